package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// VerifyOptions control Verify.
type VerifyOptions struct {
	// ReadData reads every pack whole and checks its name and every blob's
	// hash, instead of only its trailer.
	ReadData bool
}

// Problem is one thing Verify found wrong. Object names the stored object
// ("packs/ab/<id>", "index/<id>", "snapshots/<id>"); Path, when known, is
// the path inside that snapshot that the problem makes unrestorable.
type Problem struct {
	Object string `json:"object"`
	Path   string `json:"path,omitempty"`
	Err    string `json:"error"`
}

func (p Problem) String() string {
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", p.Object, p.Path, p.Err)
	}
	return fmt.Sprintf("%s: %s", p.Object, p.Err)
}

// VerifyReport is what Verify checked and what it found. A repository is
// sound when Problems is empty.
type VerifyReport struct {
	Snapshots int       `json:"snapshots"`
	Trees     int       `json:"trees"`
	Blobs     int       `json:"blobs"`
	Packs     int       `json:"packs"`
	BytesRead int64     `json:"bytes_read"`
	Problems  []Problem `json:"problems"`
}

// Limits that keep one broken object from burying the report: a pack with
// many bad blobs or a snapshot with many unresolvable files is reported
// with its first few problems and a count of the rest.
const (
	maxBlobProblemsPerPack     = 10
	maxPathProblemsPerSnapshot = 20
	// verifyTailSize is how much of a pack's end one range GET fetches
	// when only the trailer is checked; it holds the whole trailer of
	// most packs, so ParseTrailer's two reads cost one request.
	verifyTailSize = 64 << 10
	// minTrailerSize is the version byte plus the smallest frame and blob
	// counts: a pack is at least this much larger than its frames.
	minTrailerSize = 3
	footerLen      = 12
)

// Verify checks the repository's structure and, with ReadData, its
// contents: every index delta decodes and matches its name; every pack an
// index names exists, is large enough for its frames, and has a trailer
// that agrees with the index; every snapshot decodes; every tree of every
// snapshot loads and every file chunk has an index entry whose pack is
// sound; every snapshot's trees hold no more than it declares and than a
// trusted restore accepts (DefaultLimits; counted once per unique tree,
// as Restore does), and the names of each hard-link group agree in
// content, size, mode, owner, mtime and xattrs. The objects are listed in
// the order a backup writes them in reverse (snapshots, index, packs), so
// a backup that commits while Verify runs is either seen whole or not at
// all.
//
// A shared subtree is walked once, so a problem inside it is reported
// under the first snapshot and path that reached it. Verify returns an
// error only when it cannot run (a listing fails, ctx ends); everything it
// finds wrong is in the report.
func (r *Repository) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	v := &verifier{
		r: r, opts: opts,
		blobs: make(map[chunk.ID]pack.Entry),
		packs: make(map[chunk.ID][]pack.Entry),
		bad:   make(map[chunk.ID]string),
		trees: make(map[chunk.ID]bool),
		// An empty list, not nil, so that JSON shows "problems": [].
		problems: []Problem{},
		// Shared by every snapshot's count.
		counter: newTreeCounter(r.loadTreeAt, false),
	}
	snaps, err := v.listSnapshots(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	if err := v.checkIndex(ctx); err != nil {
		return VerifyReport{}, err
	}
	if err := v.checkPacks(ctx); err != nil {
		return VerifyReport{}, err
	}
	n, err := v.checkSnapshots(ctx, snaps)
	if err != nil {
		return VerifyReport{}, err
	}
	rep := VerifyReport{
		Snapshots: n,
		Trees:     len(v.trees),
		Blobs:     len(v.blobs),
		Packs:     len(v.packs),
		BytesRead: v.bytesRead.Load(),
		Problems:  v.problems,
	}
	return rep, nil
}

// verifier is the state of one Verify run.
type verifier struct {
	r    *Repository
	opts VerifyOptions

	bytesRead atomic.Int64

	// Written by checkIndex, read-only afterwards.
	blobs map[chunk.ID]pack.Entry   // every blob an index delta names (first location)
	packs map[chunk.ID][]pack.Entry // every entry of every delta, by pack

	mu       sync.Mutex // guards the fields below
	problems []Problem
	bad      map[chunk.ID]string // packs found missing or corrupt: why

	trees map[chunk.ID]bool // trees walked; used by one goroutine only
	// counter counts every snapshot's trees (checkBounds), memoized
	// across snapshots; used by one goroutine only.
	counter *treeCounter
}

func (v *verifier) problem(object, path, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.problems = append(v.problems, Problem{Object: object, Path: path, Err: fmt.Sprintf(format, args...)})
}

func (v *verifier) markBad(id chunk.ID, why string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.bad[id]; !ok {
		v.bad[id] = why
	}
}

func (v *verifier) badPack(id chunk.ID) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	why, ok := v.bad[id]
	return why, ok
}

func (v *verifier) load(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	data, err := store.LoadAll(ctx, v.r.st, name, offset, length)
	v.bytesRead.Add(int64(len(data)))
	return data, err
}

func (v *verifier) listSnapshots(ctx context.Context) ([]chunk.ID, error) {
	var ids []chunk.ID
	err := v.r.st.List(ctx, snapshotPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, snapshotPrefix))
		if err != nil {
			v.problem(fi.Name, "", "stray object: not named by a snapshot ID")
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: verify: list %s: %w", snapshotPrefix, err)
	}
	return ids, nil
}

// checkIndex reads and decodes every index delta, and adds the entries of
// deltas written since Open to the repository's index so that trees they
// name can be loaded.
func (v *verifier) checkIndex(ctx context.Context) error {
	var names []string
	err := v.r.st.List(ctx, indexPrefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("repo: verify: list %s: %w", indexPrefix, err)
	}
	decoded := make([][]pack.Entry, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range names {
		g.Go(func() error {
			entries, err := v.readIndex(gctx, name)
			if err != nil {
				if ctxErr := gctx.Err(); ctxErr != nil {
					return ctxErr
				}
				v.problem(name, "", "%v", err)
				return nil
			}
			decoded[i] = entries
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, entries := range decoded {
		if entries == nil {
			continue
		}
		v.r.idx.add(names[i], entries)
		for _, e := range entries {
			v.packs[e.Pack] = append(v.packs[e.Pack], e)
			if _, ok := v.blobs[e.ID]; !ok {
				v.blobs[e.ID] = e
			}
		}
	}
	return nil
}

func (v *verifier) readIndex(ctx context.Context, name string) ([]pack.Entry, error) {
	want, err := chunk.ParseID(strings.TrimPrefix(name, indexPrefix))
	if err != nil {
		return nil, fmt.Errorf("stray object: not named by an index ID")
	}
	data, err := v.load(ctx, name, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if chunk.Hash(data) != want {
		return nil, fmt.Errorf("%w: content does not match its name", pack.ErrCorrupt)
	}
	entries, err := pack.DecodeIndex(data)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []pack.Entry{} // an empty delta decoded fine
	}
	return entries, nil
}

// checkPacks lists packs/ once and checks every pack the index names.
func (v *verifier) checkPacks(ctx context.Context) error {
	sizes := make(map[chunk.ID]int64)
	err := v.r.st.List(ctx, packPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(fi.Name[strings.LastIndexByte(fi.Name, '/')+1:])
		if err != nil || fi.Name != packName(id) {
			v.problem(fi.Name, "", "stray object: not named by a pack ID")
			return nil
		}
		sizes[id] = fi.Size
		return nil
	})
	if err != nil {
		return fmt.Errorf("repo: verify: list %s: %w", packPrefix, err)
	}
	ids := make([]chunk.ID, 0, len(v.packs))
	for id := range v.packs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.r.opts.Uploads)
	for _, id := range ids {
		size, ok := sizes[id]
		if !ok {
			v.problem(packName(id), "", "missing: the index lists %d blobs in it", len(v.packs[id]))
			v.markBad(id, "missing")
			continue
		}
		g.Go(func() error {
			var err error
			if v.opts.ReadData {
				err = v.readPack(gctx, id, size)
			} else {
				err = v.checkTrailer(gctx, id, size)
			}
			if err != nil && gctx.Err() != nil {
				return gctx.Err()
			}
			return nil
		})
	}
	return g.Wait()
}

// checkTrailer checks a pack's size and trailer against the index without
// reading its data.
func (v *verifier) checkTrailer(ctx context.Context, id chunk.ID, size int64) error {
	name := packName(id)
	if !v.sizeOK(id, size) {
		return nil
	}
	ra := &tailReader{size: size, load: func(off, n int64) ([]byte, error) {
		return v.load(ctx, name, off, n)
	}}
	trailer, err := pack.ParseTrailer(id, ra, size)
	if err != nil {
		v.problem(name, "", "trailer: %v", err)
		if errors.Is(err, pack.ErrCorrupt) || errors.Is(err, pack.ErrVersion) {
			v.markBad(id, "corrupt (bad trailer)")
		} else {
			v.markBad(id, "unreadable")
		}
		return err
	}
	v.compareTrailer(id, trailer)
	return nil
}

// sizeOK checks that the pack is large enough for the frames the index
// places in it plus a footer and the smallest trailer.
func (v *verifier) sizeOK(id chunk.ID, size int64) bool {
	var end int64
	for _, e := range v.packs[id] {
		end = max(end, int64(e.Frame.End()))
	}
	if need := end + minTrailerSize + footerLen; size < need {
		v.problem(packName(id), "", "size %d bytes, but the index places frames up to byte %d (at least %d needed)", size, end, need)
		v.markBad(id, "truncated")
		return false
	}
	return true
}

// compareTrailer reports index entries for pack id that its trailer lacks
// or describes differently. Blobs in the trailer that no index names are
// not a problem (gc removes them).
func (v *verifier) compareTrailer(id chunk.ID, trailer []pack.Entry) {
	inPack := make(map[chunk.ID][]pack.Entry, len(trailer))
	for _, e := range trailer {
		inPack[e.ID] = append(inPack[e.ID], e)
	}
	var bad int
	var first string
	for _, e := range v.packs[id] {
		found := false
		for _, t := range inPack[e.ID] {
			if t == e {
				found = true
				break
			}
		}
		if found {
			continue
		}
		if bad == 0 {
			if len(inPack[e.ID]) == 0 {
				first = fmt.Sprintf("blob %s is in the index but not in the pack's trailer", e.ID)
			} else {
				first = fmt.Sprintf("blob %s: index says %s, trailer says %s", e.ID, describeEntry(e), describeEntry(inPack[e.ID][0]))
			}
		}
		bad++
	}
	if bad > 0 {
		if bad > 1 {
			first += fmt.Sprintf(" (and %d more disagreements)", bad-1)
		}
		v.problem(packName(id), "", "index and trailer disagree: %s", first)
		v.markBad(id, "inconsistent with the index")
	}
}

func describeEntry(e pack.Entry) string {
	return fmt.Sprintf("type %d, frame %d+%d (raw %d, compressed %t), blob %d+%d",
		e.Type, e.Frame.Offset, e.Frame.Length, e.Frame.RawLength, e.Frame.Compressed, e.Offset, e.Length)
}

// readPack reads a whole pack and checks its name, its trailer and every
// blob in it.
func (v *verifier) readPack(ctx context.Context, id chunk.ID, size int64) error {
	name := packName(id)
	if !v.sizeOK(id, size) {
		return nil
	}
	data, err := v.load(ctx, name, 0, 0)
	if err != nil {
		v.problem(name, "", "read: %v", err)
		v.markBad(id, "unreadable")
		return err
	}
	if chunk.Hash(data) != id {
		v.problem(name, "", "%v: content does not match its name", pack.ErrCorrupt)
		v.markBad(id, "corrupt")
	}
	trailer, err := pack.ParseTrailer(id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		v.problem(name, "", "trailer: %v", err)
		v.markBad(id, "corrupt (bad trailer)")
		return nil
	}
	v.compareTrailer(id, trailer)
	v.checkBlobs(id, data, trailer)
	return nil
}

// checkBlobs decodes every frame of a pack and checks every blob's hash.
func (v *verifier) checkBlobs(id chunk.ID, data []byte, trailer []pack.Entry) {
	var bad []string
	var frame []byte
	var cur pack.Frame
	var frameErr error
	for i, e := range trailer {
		if i == 0 || e.Frame != cur {
			cur = e.Frame
			frame, frameErr = pack.DecodeFrame(v.r.dec, e.Frame, data[e.Frame.Offset:e.Frame.End()], frame[:0])
			if frameErr != nil {
				bad = append(bad, frameErr.Error())
			}
		}
		if frameErr != nil {
			continue // reported once per frame
		}
		if _, err := pack.Blob(frame, e); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) == 0 {
		return
	}
	v.markBad(id, "corrupt")
	for i, msg := range bad {
		if i == maxBlobProblemsPerPack {
			v.problem(packName(id), "", "and %d more corrupt frames or blobs", len(bad)-i)
			break
		}
		v.problem(packName(id), "", "%s", msg)
	}
}

// tailReader is an io.ReaderAt over a pack in the store that fetches the
// pack's last verifyTailSize bytes with one range read and serves reads
// that fall inside them from memory; others become range reads of their
// own. It is used by one goroutine.
type tailReader struct {
	size int64
	load func(off, n int64) ([]byte, error)
	tail []byte // the last len(tail) bytes of the pack, once fetched
}

func (t *tailReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > t.size {
		return 0, fmt.Errorf("repo: read %d bytes at %d of a %d-byte pack: %w", len(p), off, t.size, store.ErrInvalidRange)
	}
	if t.tail == nil {
		n := min(t.size, verifyTailSize)
		b, err := t.load(t.size-n, n)
		if err != nil {
			return 0, err
		}
		if int64(len(b)) != n {
			return 0, fmt.Errorf("repo: short read: %d of %d bytes", len(b), n)
		}
		t.tail = b
	}
	if start := t.size - int64(len(t.tail)); off >= start {
		return copy(p, t.tail[off-start:]), nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	b, err := t.load(off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	if len(b) != len(p) {
		return copy(p, b), fmt.Errorf("repo: short read: %d of %d bytes", len(b), len(p))
	}
	return copy(p, b), nil
}

// checkSnapshots decodes every snapshot and walks its trees, and returns
// how many snapshots it checked.
func (v *verifier) checkSnapshots(ctx context.Context, ids []chunk.ID) (int, error) {
	n := 0
	for _, id := range ids {
		name := snapshotPrefix + id.String()
		s, err := v.r.Snapshot(ctx, id)
		if errors.Is(err, ErrSnapshotNotFound) {
			continue // removed (expired) since the listing
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			v.problem(name, "", "%v", err)
			n++
			continue
		}
		n++
		w := &snapWalk{v: v, name: name, badPacks: make(map[chunk.ID]bool)}
		if err := w.tree(ctx, s.Tree, "", 0); err != nil {
			return n, err
		}
		if w.count > maxPathProblemsPerSnapshot {
			v.problem(name, "", "and %d more unrestorable paths", w.count-maxPathProblemsPerSnapshot)
		}
		if err := v.checkBounds(ctx, name, s); err != nil {
			return n, err
		}
	}
	return n, nil
}

// snapWalk walks one snapshot's trees.
type snapWalk struct {
	v        *verifier
	name     string
	badPacks map[chunk.ID]bool // bad packs already reported for this snapshot
	count    int               // path problems found
}

func (w *snapWalk) problem(path, format string, args ...any) {
	w.count++
	if w.count <= maxPathProblemsPerSnapshot {
		w.v.problem(w.name, path, format, args...)
	}
}

// tree checks tree id at path dir and everything below it. It returns an
// error only when ctx ends.
func (w *snapWalk) tree(ctx context.Context, id chunk.ID, dir string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id.IsZero() || w.v.trees[id] {
		return nil
	}
	w.v.trees[id] = true
	shown := dir
	if shown == "" {
		shown = "."
	}
	if depth > manifest.MaxDepth {
		w.problem(shown, "more than %d directories deep", manifest.MaxDepth)
		return nil
	}
	if !w.blob(shown, id, pack.TreeBlob, "tree") {
		return nil
	}
	t, err := w.v.r.loadTree(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.problem(shown, "tree %s: %v", id, err)
		return nil
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := n.Name
		if dir != "" {
			p = dir + "/" + n.Name
		}
		switch n.Type {
		case manifest.TypeDir:
			if err := w.tree(ctx, n.Subtree, p, depth+1); err != nil {
				return err
			}
		case manifest.TypeFile:
			for j, c := range n.Content {
				if !w.blob(p, c, pack.DataBlob, fmt.Sprintf("chunk %d of %d", j+1, len(n.Content))) {
					break // one problem per file
				}
			}
		}
	}
	return nil
}

// blob checks that blob id, needed at path, has an index entry of type t
// in a pack not found bad. A bad pack is reported once per snapshot, at
// the first path that needs it.
func (w *snapWalk) blob(path string, id chunk.ID, t pack.BlobType, what string) bool {
	e, ok := w.v.blobs[id]
	switch {
	case !ok:
		w.problem(path, "%s: blob %s is in no index", what, id)
		return false
	case e.Type != t:
		w.problem(path, "%s: blob %s is indexed as type %d, want %d", what, id, e.Type, t)
		return false
	}
	why, bad := w.v.badPack(e.Pack)
	if !bad {
		return true
	}
	if !w.badPacks[e.Pack] {
		w.badPacks[e.Pack] = true
		w.problem(path, "%s: blob %s is in pack %s, which is %s", what, id, packName(e.Pack), why)
	}
	return false
}
