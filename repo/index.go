package repo

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// index maps blob IDs to where they are stored. It holds the entries of
// every index delta read so far plus those this process committed.
type index struct {
	mu     sync.RWMutex // guards the fields below
	blobs  map[chunk.ID]pack.Entry
	deltas map[string]bool // index object names already read
}

func newIndex() *index {
	return &index{blobs: make(map[chunk.ID]pack.Entry), deltas: make(map[string]bool)}
}

// lookup returns where blob id is stored.
func (x *index) lookup(id chunk.ID) (pack.Entry, bool) {
	x.mu.RLock()
	e, ok := x.blobs[id]
	x.mu.RUnlock()
	return e, ok
}

// has reports whether blob id is stored.
func (x *index) has(id chunk.ID) bool {
	_, ok := x.lookup(id)
	return ok
}

// add records entries, keeping the first location known for each blob so
// that lookups do not flap between duplicate copies.
func (x *index) add(name string, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if name != "" {
		x.deltas[name] = true
	}
	for _, e := range entries {
		if _, ok := x.blobs[e.ID]; !ok {
			x.blobs[e.ID] = e
		}
	}
}

// len returns the number of blobs known.
func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// load reads every index delta in st that has not been read yet, several
// at a time.
func (x *index) load(ctx context.Context, st store.Store, logf func(string, ...any)) error {
	var names []string
	err := st.List(ctx, indexPrefix, func(fi store.Info) error {
		x.mu.RLock()
		seen := x.deltas[fi.Name]
		x.mu.RUnlock()
		if !seen && !strings.HasSuffix(fi.Name, "/") {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("repo: list %s: %w", indexPrefix, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			data, err := store.LoadAll(ctx, st, name, 0, 0)
			if err != nil {
				return fmt.Errorf("repo: read index %s: %w", name, err)
			}
			// A corrupt delta is skipped, not fatal: the repository stays
			// usable (a blob only it listed is reported missing where it is
			// needed) and verify names the object.
			if want := strings.TrimPrefix(name, indexPrefix); chunk.Hash(data).String() != want {
				logf("skipping index %s: %v: content does not match its name", name, pack.ErrCorrupt)
				return nil
			}
			entries, err := pack.DecodeIndex(data)
			if err != nil {
				logf("skipping index %s: %v", name, err)
				return nil
			}
			x.add(name, entries)
			return nil
		})
	}
	return g.Wait()
}
