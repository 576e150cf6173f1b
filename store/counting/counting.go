package counting

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/sandsnap/sandsnap/store"
)

// Stats are request and byte counts; see the package comment.
type Stats struct {
	Puts      int64 `json:"puts"`
	Gets      int64 `json:"gets"`
	Heads     int64 `json:"heads"`
	Lists     int64 `json:"lists"`
	Deletes   int64 `json:"deletes"`
	BytesUp   int64 `json:"bytes_up"`
	BytesDown int64 `json:"bytes_down"`
}

// Sub returns s - o, field by field: the counts between two snapshots.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		Puts: s.Puts - o.Puts, Gets: s.Gets - o.Gets, Heads: s.Heads - o.Heads,
		Lists: s.Lists - o.Lists, Deletes: s.Deletes - o.Deletes,
		BytesUp: s.BytesUp - o.BytesUp, BytesDown: s.BytesDown - o.BytesDown,
	}
}

// Add returns s + o, field by field.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Puts: s.Puts + o.Puts, Gets: s.Gets + o.Gets, Heads: s.Heads + o.Heads,
		Lists: s.Lists + o.Lists, Deletes: s.Deletes + o.Deletes,
		BytesUp: s.BytesUp + o.BytesUp, BytesDown: s.BytesDown + o.BytesDown,
	}
}

// Store is a store.Store that counts the requests made to an inner store.
// It is safe for concurrent use if the inner store is.
type Store struct {
	inner store.Store

	puts, gets, heads, lists, deletes atomic.Int64
	bytesUp, bytesDown                atomic.Int64
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Invalidator = (*Store)(nil)
)

// New returns a Store that counts the requests made to inner.
func New(inner store.Store) *Store { return &Store{inner: inner} }

// Stats returns the counts so far. Fields are read one by one, so with
// calls in flight the snapshot need not be consistent across fields.
func (s *Store) Stats() Stats {
	return Stats{
		Puts: s.puts.Load(), Gets: s.gets.Load(), Heads: s.heads.Load(),
		Lists: s.lists.Load(), Deletes: s.deletes.Load(),
		BytesUp: s.bytesUp.Load(), BytesDown: s.bytesDown.Load(),
	}
}

// Save counts a PUT of len(data) bytes.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	s.puts.Add(1)
	s.bytesUp.Add(int64(len(data)))
	return s.inner.Save(ctx, name, data, opts)
}

// Load counts a GET and the bytes fn reads.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	s.gets.Add(1)
	return s.inner.Load(ctx, name, offset, length, func(r io.Reader) error {
		return fn(&countingReader{r: r, n: &s.bytesDown})
	})
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Stat counts a HEAD.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	s.heads.Add(1)
	return s.inner.Stat(ctx, name)
}

// List counts one LIST per call.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.lists.Add(1)
	return s.inner.List(ctx, prefix, fn)
}

// Remove counts a DELETE.
func (s *Store) Remove(ctx context.Context, name string) error {
	s.deletes.Add(1)
	return s.inner.Remove(ctx, name)
}

// Invalidate forwards to the inner store (store.Invalidate) and counts
// nothing: dropping a local copy is not a request to the store.
func (s *Store) Invalidate(ctx context.Context, name string) error {
	return store.Invalidate(ctx, s.inner, name)
}
