package mem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// Store is a map-backed store.Store. The zero value is an empty store that
// reads time.Now; New and NewWithClock are the usual constructors.
type Store struct {
	now func() time.Time // nil means time.Now

	mu      sync.Mutex        // guards the following 2 fields
	objects map[string]object // by name; nil until the first Save
	seq     uint64            // last ETag counter handed out
}

// object is one stored version; data is never modified after it is stored.
type object struct {
	data    []byte
	modTime time.Time
	etag    string
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store whose ModTimes come from time.Now.
func New() *Store { return &Store{} }

// NewWithClock returns an empty Store whose ModTimes come from now, so tests
// that reason about object ages (leases, TTLs, gc) control the clock.
func NewWithClock(now func() time.Time) *Store { return &Store{now: now} }

func (s *Store) clock() time.Time {
	if s.now == nil {
		return time.Now()
	}
	return s.now()
}

// checkName reports whether name is a valid object name.
func checkName(op, name string) error {
	bad := name == "" || strings.IndexByte(name, 0) >= 0
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("mem: %s %q: %w", op, name, store.ErrInvalidName)
	}
	return nil
}

// begin checks the context and the name, the common preamble of every
// method that takes a name.
func begin(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: %s %q: %w", op, name, err)
	}
	return checkName(op, name)
}

// Save stores a copy of data under name, honouring opts.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	if err := begin(ctx, "save", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.objects[name]
	switch {
	case opts.IfNoneMatch && exists:
		return fmt.Errorf("mem: save %q: %w", name, store.ErrExists)
	case opts.IfMatch != "" && !exists:
		return fmt.Errorf("mem: save %q if-match %q: %w", name, opts.IfMatch, store.ErrNotFound)
	case opts.IfMatch != "" && old.etag != opts.IfMatch:
		return fmt.Errorf("mem: save %q if-match %q (current %q): %w", name, opts.IfMatch, old.etag, store.ErrPrecondition)
	}
	if s.objects == nil {
		s.objects = make(map[string]object)
	}
	s.seq++
	s.objects[name] = object{
		data:    bytes.Clone(data),
		modTime: s.clock(),
		etag:    "m" + strconv.FormatUint(s.seq, 10),
	}
	return nil
}

// get returns the current version of name.
func (s *Store) get(op, name string) (object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[name]
	if !ok {
		return object{}, fmt.Errorf("mem: %s %q: %w", op, name, store.ErrNotFound)
	}
	return obj, nil
}

// Load calls fn with a reader over a copy of the requested range.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := begin(ctx, "load", name); err != nil {
		return err
	}
	obj, err := s.get("load", name)
	if err != nil {
		return err
	}
	size := int64(len(obj.data))
	end := offset + length
	if length == 0 {
		end = size
	}
	if offset < 0 || length < 0 || offset > size || end > size || end < offset {
		return fmt.Errorf("mem: load %q [%d, +%d) of %d bytes: %w", name, offset, length, size, store.ErrInvalidRange)
	}
	r := &onceReader{r: bytes.NewReader(bytes.Clone(obj.data[offset:end]))}
	err = fn(r)
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return err
}

// errReadAfterLoad is what a reader returns once its Load has returned.
var errReadAfterLoad = errors.New("mem: read after Load returned")

// onceReader fails once Load has returned, to catch callers that keep the
// reader beyond fn (a network body would be closed by then).
type onceReader struct {
	r *bytes.Reader

	mu     sync.Mutex // guards closed
	closed bool
}

func (r *onceReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errReadAfterLoad
	}
	return r.r.Read(p)
}

func info(name string, obj object) store.Info {
	return store.Info{Name: name, Size: int64(len(obj.data)), ModTime: obj.modTime, ETag: obj.etag}
}

// Stat returns name's Info.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := begin(ctx, "stat", name); err != nil {
		return store.Info{}, err
	}
	obj, err := s.get("stat", name)
	if err != nil {
		return store.Info{}, err
	}
	return info(name, obj), nil
}

// List calls fn for each object whose name starts with prefix, in lexical
// order. It lists the objects present when it started; fn runs without the
// lock held.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: list %q: %w", prefix, err)
	}
	s.mu.Lock()
	var infos []store.Info
	for name, obj := range s.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, info(name, obj))
		}
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem: list %q: %w", prefix, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes name; a missing name is not an error.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := begin(ctx, "remove", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, name)
	return nil
}
