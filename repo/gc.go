package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// DefaultRepackThreshold is GCOptions.RepackThreshold's default.
const DefaultRepackThreshold = 0.5

// GCOptions control GC.
type GCOptions struct {
	// RepackThreshold: a pack whose live fraction (the plain bytes of its
	// blobs that live snapshots reach, over all its blobs' plain bytes) is
	// below it has its live blobs copied into new packs and is condemned.
	// 0 means DefaultRepackThreshold; a negative value never repacks; 1
	// repacks every pack holding any dead blob.
	RepackThreshold float64
	// DryRun reports what gc would do and changes nothing (the store's
	// clock is still read with a probe object that is removed again).
	DryRun bool
}

// GCReport is what one GC run did (or, with DryRun, would do).
type GCReport struct {
	DryRun bool `json:"dry_run"`
	// Generation is gc/state's generation when the run ended.
	Generation uint64 `json:"generation"`
	// ExpiredRemoved counts snapshot objects removed because their TTL
	// passed (by the store's clock); Snapshots the live ones marked.
	ExpiredRemoved int `json:"expired_removed"`
	Snapshots      int `json:"snapshots"`
	// BlobsReachable counts the trees and chunks live snapshots reach.
	BlobsReachable int `json:"blobs_reachable"`
	// Leases counts the unexpired leases (running writers) seen;
	// LeasesRemoved the expired ones removed (crashed writers').
	Leases        int `json:"leases"`
	LeasesRemoved int `json:"leases_removed"`
	// PacksCondemned counts packs condemned by this run (dead, orphaned
	// or repacked); they are deleted by a later run once every lease that
	// existed now has ended or expired.
	PacksCondemned int `json:"packs_condemned"`
	// PacksWaiting counts packs condemned earlier whose leases still run.
	PacksWaiting int `json:"packs_waiting"`
	// PacksKept counts packs condemned earlier that a live snapshot
	// reaches again (a writer committed a blob in them): uncondemned.
	PacksKept int `json:"packs_kept"`
	// PacksDeleted and BytesFreed count the packs deleted by this run.
	PacksDeleted int   `json:"packs_deleted"`
	BytesFreed   int64 `json:"bytes_freed"`
	// PacksRepacked counts packs whose live blobs were copied into new
	// packs (and which were then condemned); BytesRepacked the plain
	// bytes copied.
	PacksRepacked int   `json:"packs_repacked"`
	BytesRepacked int64 `json:"bytes_repacked"`
	// IndexFolded counts the index deltas folded into one.
	IndexFolded int `json:"index_folded"`
}

// Remove deletes snapshot id's object now. Its blobs stay until gc finds
// that no live snapshot reaches them. A missing snapshot is
// ErrSnapshotNotFound.
func (r *Repository) Remove(ctx context.Context, id chunk.ID) error {
	name := snapshotPrefix + id.String()
	if _, err := r.st.Stat(ctx, name); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrSnapshotNotFound, id)
	} else if err != nil {
		return fmt.Errorf("repo: stat %s: %w", name, err)
	}
	if err := r.st.Remove(ctx, name); err != nil {
		return fmt.Errorf("repo: remove %s: %w", name, err)
	}
	return nil
}

// GC removes expired snapshots, deletes packs condemned by earlier runs
// once no writer can still be using them, folds the index, and condemns
// the packs no live snapshot needs (repacking those that are mostly dead).
// See doc.go, "Garbage collection", for the protocol and why the order of
// its steps makes it safe while writers run.
//
// The mark keeps one set entry per reachable blob (52 to 84 bytes each
// with Go's map overhead, measured); the index of the whole repository is
// held too, as every open Repository holds it.
func (r *Repository) GC(ctx context.Context, opts GCOptions) (GCReport, error) {
	if opts.RepackThreshold == 0 {
		opts.RepackThreshold = DefaultRepackThreshold
	}
	opts.RepackThreshold = min(opts.RepackThreshold, 1) // above 1, live packs would be rewritten every run
	c := &collector{
		r: r, opts: opts, run: newWriterID(),
		rep:    GCReport{DryRun: opts.DryRun},
		byPack: make(map[chunk.ID][]*pack.Entry),
		locs:   make(map[chunk.ID][]*pack.Entry),
		packs:  make(map[chunk.ID]store.Info),
		reach:  make(map[chunk.ID]struct{}),
	}
	err := c.collect(ctx)
	c.rep.Generation = c.state.Generation
	return c.rep, err
}

// collector is the state of one GC run.
type collector struct {
	r    *Repository
	opts GCOptions
	run  string
	rep  GCReport

	now    time.Time // store time at the start
	state  gcState
	ref    stateRef
	dirty  bool // state changed and must be written
	bump   bool // the next write must also bump the generation
	leases map[string]leaseInfo

	deltas []deltaFile
	byPack map[chunk.ID][]*pack.Entry // entries by pack (pointers into deltas)
	locs   map[chunk.ID][]*pack.Entry // entries by blob, one per pack
	packs  map[chunk.ID]store.Info    // packs/ listing
	reach  map[chunk.ID]struct{}      // the mark
}

// deltaFile is one index delta as gc read it.
type deltaFile struct {
	name    string
	entries []pack.Entry
}

func (c *collector) collect(ctx context.Context) error {
	r := c.r
	now, err := r.storeNow(ctx)
	if err != nil {
		return fmt.Errorf("repo: gc: read the store's clock: %w", err)
	}
	c.now = now
	// The state, then the leases, then the snapshots, then the index: a
	// writer ends its lease only after its snapshot exists, and writes
	// its index delta before its snapshot, so whatever a recorded lease's
	// writer committed is seen by the mark and found in the index.
	if c.state, c.ref, err = r.readGCState(ctx); err != nil {
		return err
	}
	if !c.opts.DryRun {
		// Claim the state: a gc that started earlier fails its next write
		// instead of clobbering this one's.
		if err := c.writeState(ctx); err != nil {
			return err
		}
	}
	if c.leases, err = r.listLeases(ctx, now); err != nil {
		return err
	}
	// An expired lease counts as ended; its object (a crashed writer's)
	// is removed. A writer that was only stalled lapses and commits
	// nothing (lease.check), whether or not its object is still there.
	var stale []string
	for _, li := range c.leases {
		if !li.expired {
			c.rep.Leases++
		} else {
			stale = append(stale, li.name)
		}
	}
	c.rep.LeasesRemoved = len(stale)
	if !c.opts.DryRun {
		slices.Sort(stale)
		if err := r.removeMany(ctx, stale); err != nil {
			return fmt.Errorf("repo: gc: remove expired leases: %w", err)
		}
	}
	roots, err := c.snapshots(ctx)
	if err != nil {
		return err
	}
	if err := c.loadIndex(ctx); err != nil {
		return err
	}
	if err := c.listPacks(ctx); err != nil {
		return err
	}
	if err := c.mark(ctx, roots); err != nil {
		return err
	}
	if err := c.deleteCondemned(ctx); err != nil {
		return err
	}
	if err := c.condemn(ctx); err != nil {
		return err
	}
	if c.dirty && !c.opts.DryRun {
		return c.writeState(ctx)
	}
	return nil
}

// writeState writes c.state over the version last read or written.
func (c *collector) writeState(ctx context.Context) error {
	if c.bump {
		c.state.Generation++
	}
	c.state.Run, c.state.Written = c.run, c.now
	ref, err := c.r.writeGCState(ctx, c.ref, &c.state)
	if err != nil {
		return err
	}
	c.ref, c.dirty, c.bump = ref, false, false
	return nil
}

// snapshots removes expired snapshot objects and returns the root trees
// of the live ones. A snapshot that cannot be read stops gc: what it
// reaches is unknown.
func (c *collector) snapshots(ctx context.Context) ([]chunk.ID, error) {
	r := c.r
	var ids []chunk.ID
	err := r.st.List(ctx, snapshotPrefix, func(fi store.Info) error {
		if id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, snapshotPrefix)); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list %s: %w", snapshotPrefix, err)
	}
	var roots []chunk.ID
	for _, id := range ids {
		s, err := r.Snapshot(ctx, id)
		if errors.Is(err, ErrSnapshotNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("repo: gc: %w (remove it with `sandsnap rm` if it is beyond repair)", err)
		}
		if s.Expires != nil && !c.now.Before(*s.Expires) {
			c.rep.ExpiredRemoved++
			if !c.opts.DryRun {
				if err := r.st.Remove(ctx, snapshotPrefix+id.String()); err != nil {
					return nil, fmt.Errorf("repo: gc: remove expired snapshot %s: %w", id, err)
				}
			}
			continue
		}
		c.rep.Snapshots++
		roots = append(roots, s.Tree)
	}
	return roots, nil
}

// loadIndex reads every index delta. A delta that cannot be read or does
// not match its name stops gc: the packs it lists would look orphaned.
// The repository's own index is replaced by what was read, so that the
// mark's tree loads find every tree.
func (c *collector) loadIndex(ctx context.Context) error {
	r := c.r
	var names []string
	err := r.st.List(ctx, indexPrefix, func(fi store.Info) error {
		if !strings.HasSuffix(fi.Name, "/") {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("repo: list %s: %w", indexPrefix, err)
	}
	c.deltas = make([]deltaFile, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range names {
		g.Go(func() error {
			data, err := store.LoadAll(gctx, r.st, name, 0, 0)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: index %s vanished (folded by it)", ErrConcurrentGC, name)
			}
			if err != nil {
				return fmt.Errorf("repo: gc: read index %s: %w", name, err)
			}
			if chunk.Hash(data).String() != strings.TrimPrefix(name, indexPrefix) {
				return fmt.Errorf("repo: gc: index %s: %w: content does not match its name (run verify)", name, pack.ErrCorrupt)
			}
			entries, err := pack.DecodeIndex(data)
			if err != nil {
				return fmt.Errorf("repo: gc: index %s: %w (run verify)", name, err)
			}
			c.deltas[i] = deltaFile{name: name, entries: entries}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fresh := newIndex()
	for i := range c.deltas {
		d := &c.deltas[i]
		for j := range d.entries {
			c.addEntry(&d.entries[j])
		}
		fresh.add(d.name, d.entries)
	}
	r.idx.replace(fresh)
	r.idx.setGC(c.state.Generation, c.state.condemnedPacks())
	return nil
}

// addEntry files e by pack and by blob, once per (blob, pack).
func (c *collector) addEntry(e *pack.Entry) {
	if slices.ContainsFunc(c.locs[e.ID], func(o *pack.Entry) bool { return o.Pack == e.Pack }) {
		return
	}
	c.locs[e.ID] = append(c.locs[e.ID], e)
	c.byPack[e.Pack] = append(c.byPack[e.Pack], e)
}

func (c *collector) listPacks(ctx context.Context) error {
	err := c.r.st.List(ctx, packPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(fi.Name[strings.LastIndexByte(fi.Name, '/')+1:])
		if err != nil {
			c.r.opts.Logf("gc: ignoring stray object %s", fi.Name)
			return nil
		}
		c.packs[id] = fi
		return nil
	})
	if err != nil {
		return fmt.Errorf("repo: list %s: %w", packPrefix, err)
	}
	return nil
}

// mark collects every blob the live snapshots reach. A shared subtree is
// walked once.
func (c *collector) mark(ctx context.Context, roots []chunk.ID) error {
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := c.reach[id]; ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.reach[id] = struct{}{}
		t, err := c.r.loadTree(ctx, id)
		if err != nil {
			return fmt.Errorf("repo: gc: mark: %w (run verify; gc deletes nothing while a live snapshot cannot be read)", err)
		}
		for i := range t.Nodes {
			n := &t.Nodes[i]
			switch n.Type {
			case manifest.TypeDir:
				if _, ok := c.reach[n.Subtree]; !ok {
					stack = append(stack, n.Subtree)
				}
			case manifest.TypeFile:
				for _, ch := range n.Content {
					c.reach[ch] = struct{}{}
				}
			}
		}
	}
	c.rep.BlobsReachable = len(c.reach)
	return nil
}

// leasesEnded reports whether every lease recorded with s has ended (its
// object is gone) or expired by the store's clock.
func (c *collector) leasesEnded(s *condemnedSet) bool {
	for _, l := range s.Leases {
		if li, ok := c.leases[l.Name]; ok && !li.expired {
			return false
		}
	}
	return true
}

// deleteCondemned deletes the packs of sets condemned by earlier runs
// whose leases have all ended, unless the fresh mark finds a live blob in
// one with no copy elsewhere (a writer committed it after the condemning
// mark): such a pack is kept and uncondemned. The order: state (sets
// marked deleting, generation bumped, so writers treat the packs as gone),
// then the folded index, then removal of the deltas it replaces, then
// the packs.
func (c *collector) deleteCondemned(ctx context.Context) error {
	var candidates []chunk.ID
	kept := make([]condemnedSet, 0, len(c.state.Condemned))
	for _, s := range c.state.Condemned {
		switch {
		case s.Deleted:
			// Dropped. The generation must change with it: a process
			// whose index was loaded before the fold still holds the
			// packs' entries, and only a new generation makes it reload.
			c.dirty, c.bump = true, true
			continue
		case s.Deleting: // a run that crashed while deleting: finish it
			candidates = append(candidates, s.Packs...)
			s.candidate = true
		case !s.Sealed:
			// A run that crashed between condemning and sealing. The
			// leases listed now include every writer that could have
			// missed the condemnation.
			s.Leases = c.leaseRefs()
			s.Sealed = true
			c.dirty = true
			c.rep.PacksWaiting += len(s.Packs)
		case c.leasesEnded(&s):
			candidates = append(candidates, s.Packs...)
			s.candidate = true
		default:
			c.rep.PacksWaiting += len(s.Packs)
		}
		kept = append(kept, s)
	}
	c.state.Condemned = kept
	slices.SortFunc(candidates, func(a, b chunk.ID) int { return bytes.Compare(a[:], b[:]) })
	candidates = slices.Compact(candidates)
	del := make(map[chunk.ID]bool, len(candidates))
	for _, p := range candidates {
		del[p] = true
	}
	// One pass suffices: taking a pack out of del only adds copies
	// outside it.
	var keep []chunk.ID
	for _, p := range candidates {
		if !c.deletable(p, del) {
			delete(del, p)
			keep = append(keep, p)
		}
	}
	c.rep.PacksKept = len(keep)
	if len(keep) > 0 {
		c.dirty = true
		c.uncondemn(keep)
	}
	var names []string
	for p := range del {
		if fi, ok := c.packs[p]; ok {
			names = append(names, fi.Name)
			c.rep.PacksDeleted++
			c.rep.BytesFreed += fi.Size
		}
	}
	slices.Sort(names)
	if c.opts.DryRun {
		return nil
	}
	if len(del) > 0 {
		for i := range c.state.Condemned {
			s := &c.state.Condemned[i]
			if s.candidate {
				s.Deleting = true
			}
		}
		c.state.Generation++
		if err := c.writeState(ctx); err != nil {
			return err
		}
	}
	if len(del) == 0 && len(c.deltas) > 1 {
		// Fold only while this run still owns gc/state.
		if err := c.writeState(ctx); err != nil {
			return err
		}
	}
	if len(del) > 0 || len(c.deltas) > 1 {
		if err := c.fold(ctx, del); err != nil {
			return err
		}
	}
	if len(del) == 0 {
		return nil
	}
	if err := c.r.removeMany(ctx, names); err != nil {
		return fmt.Errorf("repo: gc: delete packs: %w", err)
	}
	for p := range del {
		delete(c.packs, p)
	}
	for i := range c.state.Condemned {
		s := &c.state.Condemned[i]
		if s.Deleting {
			s.Deleting, s.Deleted = false, true
			c.dirty = true
		}
	}
	return nil
}

// deletable reports whether every live blob in pack p has a copy in an
// existing pack outside del.
func (c *collector) deletable(p chunk.ID, del map[chunk.ID]bool) bool {
	for _, e := range c.byPack[p] {
		if _, live := c.reach[e.ID]; !live {
			continue
		}
		if !slices.ContainsFunc(c.locs[e.ID], func(o *pack.Entry) bool {
			_, exists := c.packs[o.Pack]
			return exists && !del[o.Pack]
		}) {
			return false
		}
	}
	return true
}

// uncondemn takes packs out of their condemned sets (dropping sets left
// empty). A set keeps the packs of one fate: a deleting set lists only
// packs being deleted.
func (c *collector) uncondemn(packs []chunk.ID) {
	out := make(map[chunk.ID]bool, len(packs))
	for _, p := range packs {
		out[p] = true
	}
	sets := c.state.Condemned[:0]
	for _, s := range c.state.Condemned {
		s.Packs = slices.DeleteFunc(s.Packs, func(p chunk.ID) bool { return out[p] })
		if len(s.Packs) > 0 {
			sets = append(sets, s)
		}
	}
	c.state.Condemned = sets
}

// fold writes one index delta holding the entries of every pack not in
// del, from every delta gc read, then removes those deltas. A delta a
// writer wrote since gc listed index/ is never removed.
func (c *collector) fold(ctx context.Context, del map[chunk.ID]bool) error {
	var all []pack.Entry
	for _, d := range c.deltas {
		for _, e := range d.entries {
			if !del[e.Pack] {
				all = append(all, e)
			}
		}
	}
	var name string
	if len(all) > 0 {
		data, err := pack.EncodeIndex(all)
		if err != nil {
			return fmt.Errorf("repo: gc: encode folded index: %w", err)
		}
		name = indexPrefix + chunk.Hash(data).String()
		if err := c.r.st.Save(ctx, name, data, store.SaveOptions{}); err != nil {
			return fmt.Errorf("repo: gc: write folded index %s: %w", name, err)
		}
	}
	var old []string
	for _, d := range c.deltas {
		if d.name != name {
			old = append(old, d.name)
		}
	}
	if err := c.r.removeMany(ctx, old); err != nil {
		return fmt.Errorf("repo: gc: remove folded index deltas: %w", err)
	}
	c.rep.IndexFolded = len(old)
	// gc's own view from here on: the folded delta only.
	c.deltas = nil
	c.byPack = make(map[chunk.ID][]*pack.Entry)
	c.locs = make(map[chunk.ID][]*pack.Entry)
	fresh := newIndex()
	if name != "" {
		c.deltas = []deltaFile{{name: name, entries: all}}
		for j := range c.deltas[0].entries {
			c.addEntry(&c.deltas[0].entries[j])
		}
		fresh.add(name, all)
	}
	c.r.idx.replace(fresh)
	c.r.idx.setGC(c.state.Generation, c.state.condemnedPacks())
	return nil
}

// leaseRefs returns the leases listed at the start of the run, expired or
// not (an expired one is judged expired again later).
func (c *collector) leaseRefs() []leaseRef {
	refs := make([]leaseRef, 0, len(c.leases))
	for _, li := range c.leases {
		refs = append(refs, leaseRef{Name: li.name, ModTime: li.modTime})
	}
	slices.SortFunc(refs, func(a, b leaseRef) int { return strings.Compare(a.Name, b.Name) })
	return refs
}

// removeMany deletes objects, in batches when the store can
// (s3.BatchRemover; wrappers may hide it), else a few at a time.
func (r *Repository) removeMany(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	type batchRemover interface {
		RemoveMany(ctx context.Context, names []string) error
	}
	if br, ok := r.st.(batchRemover); ok {
		return br.RemoveMany(ctx, names)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.opts.Uploads)
	for _, name := range names {
		g.Go(func() error {
			if err := r.st.Remove(ctx, name); err != nil {
				return fmt.Errorf("repo: remove %s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
