package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// refresh serializes refreshGCView (gc_index.go), so that two
	// writers of one process do not install views out of order.
	refresh sync.Mutex

	mu     sync.RWMutex // guards the fields below
	blobs  map[chunk.ID]pack.Entry
	deltas map[string]bool // index object names already read
	// more holds the further locations of blobs stored in more than one
	// pack (a writer's re-upload of a blob gc condemned, a repack): rare,
	// so a side map rather than a slice per blob.
	more map[chunk.ID][]pack.Entry
	// gen is the gc generation read before these entries were loaded, and
	// condemned the packs gc had condemned then (see gc_index.go).
	gen       uint64
	condemned map[chunk.ID]bool
}

func newIndex() *index {
	return &index{blobs: make(map[chunk.ID]pack.Entry), deltas: make(map[string]bool), more: make(map[chunk.ID][]pack.Entry)}
}

// lookup returns where blob id is stored, preferring a pack that gc has
// not condemned; a blob whose every copy is condemned is still returned
// (gc keeps such a pack while a live snapshot reaches it).
func (x *index) lookup(id chunk.ID) (pack.Entry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.lookupLocked(id)
}

// lookupLocked is lookup with x.mu held.
func (x *index) lookupLocked(id chunk.ID) (pack.Entry, bool) {
	e, ok := x.blobs[id]
	if !ok || !x.condemned[e.Pack] {
		return e, ok
	}
	for _, a := range x.more[id] {
		if !x.condemned[a.Pack] {
			return a, true
		}
	}
	return e, true
}

// has reports whether blob id is stored in a pack that gc has not
// condemned: a writer must not reuse a blob whose every copy gc may
// delete, so it uploads such a blob again.
func (x *index) has(id chunk.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.lookupLocked(id)
	return ok && !x.condemned[e.Pack]
}

// add records entries, keeping the first location known for each blob as
// its main one so that lookups do not flap between duplicate copies;
// other packs holding it go to x.more.
func (x *index) add(name string, entries []pack.Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if name != "" {
		x.deltas[name] = true
	}
	for _, e := range entries {
		old, ok := x.blobs[e.ID]
		switch {
		case !ok:
			x.blobs[e.ID] = e
		case old.Pack != e.Pack && !slices.ContainsFunc(x.more[e.ID], func(a pack.Entry) bool { return a.Pack == e.Pack }):
			x.more[e.ID] = append(x.more[e.ID], e)
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
// at a time. A delta that vanishes between the listing and its read was
// folded by gc, which writes the folded delta before it removes the old
// ones: the listing is then taken again to find it.
func (x *index) load(ctx context.Context, st store.Store, logf func(string, ...any)) error {
	for range 3 {
		vanished, err := x.loadOnce(ctx, st, logf)
		if err != nil || !vanished {
			return err
		}
	}
	return fmt.Errorf("repo: index deltas keep vanishing while read (gc folding them?); try again")
}

func (x *index) loadOnce(ctx context.Context, st store.Store, logf func(string, ...any)) (vanished bool, _ error) {
	var names []string
	var gone sync.Once // sets vanished
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
		return false, fmt.Errorf("repo: list %s: %w", indexPrefix, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			// A delta that fails its hash is read once more, after its
			// cached copy (if any) is dropped: healRead.
			var data []byte
			err := healRead(ctx, st, logf, name, func() error {
				var err error
				if data, err = store.LoadAll(ctx, st, name, 0, 0); err == nil && chunk.Hash(data).String() != strings.TrimPrefix(name, indexPrefix) {
					err = fmt.Errorf("%w: content does not match its name", pack.ErrCorrupt)
				}
				return err
			})
			switch {
			case errors.Is(err, store.ErrNotFound):
				gone.Do(func() { vanished = true })
				return nil
			case errors.Is(err, pack.ErrCorrupt):
				// A corrupt delta is skipped, not fatal: the repository
				// stays usable (a blob only it listed is reported missing
				// where it is needed) and verify names the object.
				logf("skipping index %s: %v", name, err)
				return nil
			case err != nil:
				return fmt.Errorf("repo: read index %s: %w", name, err)
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
	err = g.Wait()
	return vanished, err
}
