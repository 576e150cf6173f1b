package repo

import (
	"context"
	"maps"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
)

// gcView is what a writer knows of gc: the generation and the packs it
// must treat as absent.
type gcView struct {
	gen       uint64
	condemned map[chunk.ID]bool
}

// loadGCView reads gc/state into the index before the index is first
// loaded (Open).
func (r *Repository) loadGCView(ctx context.Context) error {
	s, _, err := r.readGCState(ctx)
	if err != nil {
		return err
	}
	r.idx.setGC(s.Generation, s.condemnedPacks())
	return nil
}

// refreshGCView reads gc/state and brings the index up to date with it: a
// writer calls it after it has written its lease. When the generation is
// the one the index was loaded under, only new deltas are read; otherwise
// gc may have deleted packs and folded their deltas away, so the index is
// loaded again from scratch (entries of deleted packs must not survive in
// a long-lived process). Condemned packs are then treated as absent by
// index.has and avoided by index.lookup.
func (r *Repository) refreshGCView(ctx context.Context) (gcView, error) {
	r.idx.refresh.Lock()
	defer r.idx.refresh.Unlock()
	s, _, err := r.readGCState(ctx)
	if err != nil {
		return gcView{}, err
	}
	v := gcView{gen: s.Generation, condemned: s.condemnedPacks()}
	if v.gen != r.idx.generation() {
		fresh := newIndex()
		if err := fresh.load(ctx, r.st, r.opts.Logf); err != nil {
			return gcView{}, err
		}
		r.idx.replace(fresh)
	} else if err := r.idx.load(ctx, r.st, r.opts.Logf); err != nil {
		return gcView{}, err
	}
	r.idx.setGC(v.gen, v.condemned)
	return v, nil
}

// generation returns the gc generation the index was loaded under.
func (x *index) generation() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.gen
}

// setGC records the gc generation and its condemned packs.
func (x *index) setGC(gen uint64, condemned map[chunk.ID]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen = gen
	x.condemned = maps.Clone(condemned)
}

// replace takes over fresh's entries (a reload from scratch).
func (x *index) replace(fresh *index) {
	fresh.mu.RLock()
	defer fresh.mu.RUnlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.blobs, x.more, x.deltas = fresh.blobs, fresh.more, fresh.deltas
}

// locations returns every known location of blob id.
func (x *index) locations(id chunk.ID) []pack.Entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[id]
	if !ok {
		return nil
	}
	return append([]pack.Entry{e}, x.more[id]...)
}

// isCondemned reports whether gc has condemned pack p, as far as the
// index's view knows.
func (x *index) isCondemned(p chunk.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.condemned[p]
}
