package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// The kinds of Change.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
)

// Change is one path that differs between two snapshots, or between a
// snapshot and a directory.
type Change struct {
	// Path is slash-joined and relative to the roots.
	Path string `json:"path"`
	// Kind is ChangeAdded, ChangeRemoved or ChangeChanged.
	Kind string `json:"kind"`
	// What lists, for a changed path, what differs: "type", "content",
	// "size", "mode", "owner", "mtime", "target", "xattrs", "link". A
	// type change lists "type" alone; the entries below a directory that
	// became something else (or the reverse) follow as removed (added).
	What []string `json:"what,omitempty"`
}

// DiffOptions control DiffDir.
type DiffOptions struct {
	// Content reads every regular file and compares its chunk IDs, so a
	// change that kept size and mtime is found. Without it a file whose
	// size and mtime match is taken as unchanged, as a backup with a
	// parent would.
	Content bool
}

// Diff calls fn for every path that differs from snapshot a to snapshot b,
// depth first in name order, a directory before its entries. Subtrees with
// equal IDs are skipped by the walk, so the calls of fn follow the size of
// the change. A directory whose own metadata is equal is not reported
// when only entries below it differ.
//
// Before the walk, each snapshot's trees are counted once per unique tree
// (as Restore does) and a snapshot that holds more than it declares, or
// more than DefaultLimits allow, is refused with ErrLimit: trees are
// shared by ID, so a small hostile repository could otherwise make the
// walk endless. The count loads every tree of both snapshots, through the
// tree cache (tree packs are read whole, usually a few GETs).
//
// Hard links are compared by whether a file is linked at all ("link"):
// link IDs are numbered per snapshot, so two snapshots of equal trees may
// hold different IDs for the same group.
func (r *Repository) Diff(ctx context.Context, a, b chunk.ID, fn func(Change) error) error {
	sa, err := r.Snapshot(ctx, a)
	if err != nil {
		return err
	}
	sb, err := r.Snapshot(ctx, b)
	if err != nil {
		return err
	}
	c := newTreeCounter(r.loadTreeAt, false)
	for _, s := range []struct {
		id   chunk.ID
		snap *manifest.Snapshot
	}{{a, sa}, {b, sb}} {
		if err := c.checkSnapshot(ctx, s.snap, DefaultLimits(), true); err != nil {
			return fmt.Errorf("repo: diff: snapshot %s: %w", s.id.Str(), err)
		}
	}
	look := &treeLookup{r: r, root: sb.Tree}
	var (
		under    string // a removed directory whose entries are being reported
		retyped  string // a path reported as a type change; its Added is dropped
		inRetype bool
	)
	return manifest.Diff(ctx, r.loadTree, sa.Tree, sb.Tree, func(c manifest.Change) error {
		switch c.Kind {
		case manifest.Removed:
			if under != "" && isBelow(c.Path, under) {
				return fn(Change{Path: c.Path, Kind: ChangeRemoved})
			}
			under = ""
			if c.Old.Type == manifest.TypeDir {
				under = c.Path
			}
			// manifest.Diff reports a type change as Removed then Added;
			// one "changed (type)" line says it better. Whether b holds
			// the path is looked up in b's trees, already loaded by Diff.
			n, err := look.find(ctx, c.Path)
			if err != nil {
				return err
			}
			if n != nil {
				retyped, inRetype = c.Path, true
				return fn(Change{Path: c.Path, Kind: ChangeChanged, What: []string{"type"}})
			}
			return fn(Change{Path: c.Path, Kind: ChangeRemoved})
		case manifest.Added:
			under = ""
			if inRetype && c.Path == retyped {
				inRetype = false
				return nil
			}
			return fn(Change{Path: c.Path, Kind: ChangeAdded})
		default:
			under = ""
			what := nodeDiff(c.Old, c.New)
			if len(what) == 0 {
				return nil // only the link IDs' numbering differs
			}
			return fn(Change{Path: c.Path, Kind: ChangeChanged, What: what})
		}
	})
}

// isBelow reports whether p is inside directory dir.
func isBelow(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// treeLookup finds nodes by path in one snapshot's trees, keeping the last
// directory it decoded: Diff asks for siblings one after another.
type treeLookup struct {
	r       *Repository
	root    chunk.ID
	lastDir string
	last    *manifest.Tree
}

// find returns the node at slash-separated path p, or nil if there is none.
func (l *treeLookup) find(ctx context.Context, p string) (*manifest.Node, error) {
	dir, name := path.Split(p)
	dir = path.Clean("/" + dir)
	if l.last == nil || l.lastDir != dir {
		t, err := l.tree(ctx, dir)
		if err != nil {
			return nil, err
		}
		l.lastDir, l.last = dir, t
	}
	if l.last == nil {
		return nil, nil
	}
	n, _ := l.last.Find(name)
	return n, nil
}

// tree returns the tree of directory dir ("/" is the root), or nil if dir
// is not a directory in the snapshot.
func (l *treeLookup) tree(ctx context.Context, dir string) (*manifest.Tree, error) {
	t := &manifest.Tree{}
	if !l.root.IsZero() {
		var err error
		if t, err = l.r.loadTree(ctx, l.root); err != nil {
			return nil, err
		}
	}
	if dir == "/" {
		return t, nil
	}
	for _, e := range strings.Split(dir[1:], "/") {
		n, ok := t.Find(e)
		if !ok || n.Type != manifest.TypeDir {
			return nil, nil
		}
		var err error
		if t, err = l.r.loadTree(ctx, n.Subtree); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// nodeDiff lists what differs between two nodes of the same name and type;
// Content and Subtree are left to the caller.
func nodeDiff(a, b *manifest.Node) []string {
	var what []string
	add := func(cond bool, w string) {
		if cond {
			what = append(what, w)
		}
	}
	add(a.Type != b.Type, "type")
	if a.Type != b.Type {
		return what
	}
	add(!slices.Equal(a.Content, b.Content), "content")
	add(a.Size != b.Size, "size")
	add(a.Mode != b.Mode, "mode")
	add(a.UID != b.UID || a.GID != b.GID, "owner")
	add(a.MtimeNs != b.MtimeNs, "mtime")
	add(a.Target != b.Target, "target")
	add(!slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y manifest.Xattr) bool {
		return x.Name == y.Name && string(x.Value) == string(y.Value)
	}), "xattrs")
	add((a.LinkID == 0) != (b.LinkID == 0), "link")
	return what
}

// DiffDir calls fn for every path that differs from snapshot a to the
// directory dir as it is now, in the order Diff uses. Entries are compared
// by lstat as a backup sees them (type, size, mtime to the nanosecond,
// permission bits, owner, symlink target, user.* xattrs, whether a file
// is hard-linked); entries a backup does not store (sockets, devices) are
// ignored. A regular file whose size and mtime match is unchanged without
// being read, unless opts.Content is set: then every regular file is read,
// chunked with the repository's parameters and compared by chunk IDs.
// Symlinks below dir are never followed; dir itself may be one, as for
// Backup, and its own metadata is not compared. The snapshot is counted
// and checked first, as by Diff (ErrLimit).
func (r *Repository) DiffDir(ctx context.Context, a chunk.ID, dir string, opts DiffOptions, fn func(Change) error) error {
	snap, err := r.Snapshot(ctx, a)
	if err != nil {
		return err
	}
	if err := newTreeCounter(r.loadTreeAt, false).checkSnapshot(ctx, snap, DefaultLimits(), true); err != nil {
		return fmt.Errorf("repo: diff: snapshot %s: %w", a.Str(), err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("repo: diff %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("repo: diff %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("repo: diff %s: %w", dir, ErrNotDir)
	}
	d := &dirDiff{r: r, opts: opts, fn: fn}
	if opts.Content {
		d.chunker = chunk.NewChunker(r.cfg.Chunker)
	}
	return d.dir(ctx, snap.Tree, abs, "", 0)
}

// dirDiff is the state of one DiffDir.
type dirDiff struct {
	r       *Repository
	opts    DiffOptions
	fn      func(Change) error
	chunker *chunk.Chunker // set with opts.Content
}

// dir compares the tree id with the directory abs (rel in the snapshot).
func (d *dirDiff) dir(ctx context.Context, id chunk.ID, abs, rel string, depth int) error {
	if depth > manifest.MaxDepth {
		return fmt.Errorf("repo: diff: %s is more than %d directories deep", abs, manifest.MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &manifest.Tree{}
	if !id.IsZero() {
		var err error
		if t, err = d.r.loadTree(ctx, id); err != nil {
			return err
		}
	}
	fd, names, err := readDir(abs)
	if err != nil {
		return fmt.Errorf("repo: diff: list %s: %w", abs, err)
	}
	unix.Close(fd)
	i, j := 0, 0
	for i < len(t.Nodes) || j < len(names) {
		switch {
		case j == len(names) || (i < len(t.Nodes) && t.Nodes[i].Name < names[j]):
			err = d.removed(ctx, &t.Nodes[i], joinRel(rel, t.Nodes[i].Name))
			i++
		case i == len(t.Nodes) || names[j] < t.Nodes[i].Name:
			err = d.entry(ctx, nil, abs, rel, names[j], depth)
			j++
		default:
			err = d.entry(ctx, &t.Nodes[i], abs, rel, names[j], depth)
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// removed reports old and, for a directory, everything below it.
func (d *dirDiff) removed(ctx context.Context, old *manifest.Node, p string) error {
	if err := d.fn(Change{Path: p, Kind: ChangeRemoved}); err != nil {
		return err
	}
	if old.Type != manifest.TypeDir {
		return nil
	}
	return manifest.Walk(ctx, d.r.loadTree, old.Subtree, func(q string, _ *manifest.Node) error {
		return d.fn(Change{Path: p + "/" + q, Kind: ChangeRemoved})
	})
}

// entry compares the directory entry name of parent abs with old, the
// snapshot's node of that name (nil if the snapshot has none).
func (d *dirDiff) entry(ctx context.Context, old *manifest.Node, parent, rel, name string, depth int) error {
	abs := filepath.Join(parent, name)
	p := joinRel(rel, name)
	cur, nlink, ok, err := lstatNode(abs, name)
	if err != nil {
		return err
	}
	if !ok { // gone since the listing, or a kind a backup does not store
		if old != nil {
			return d.removed(ctx, old, p)
		}
		return nil
	}
	if old == nil {
		return d.added(ctx, &cur, abs, p, depth)
	}
	if old.Type != cur.Type {
		if err := d.fn(Change{Path: p, Kind: ChangeChanged, What: []string{"type"}}); err != nil {
			return err
		}
		if old.Type == manifest.TypeDir {
			return manifest.Walk(ctx, d.r.loadTree, old.Subtree, func(q string, _ *manifest.Node) error {
				return d.fn(Change{Path: p + "/" + q, Kind: ChangeRemoved})
			})
		}
		if cur.Type == manifest.TypeDir {
			return d.dir(ctx, chunk.ID{}, abs, p, depth+1)
		}
		return nil
	}
	if cur.Type == manifest.TypeFile {
		if nlink > 1 {
			cur.LinkID = 1 // only "linked or not" is compared
		}
		// Content is compared here, not by nodeDiff: the directory holds
		// bytes, not chunk IDs.
		cur.Content = old.Content
	}
	what := nodeDiff(old, &cur)
	if cur.Type == manifest.TypeFile && d.opts.Content {
		same, err := d.sameContent(abs, old.Content)
		if err != nil {
			return err
		}
		if !same {
			what = append([]string{"content"}, what...)
		}
	}
	if len(what) > 0 {
		if err := d.fn(Change{Path: p, Kind: ChangeChanged, What: what}); err != nil {
			return err
		}
	}
	if cur.Type == manifest.TypeDir {
		return d.dir(ctx, old.Subtree, abs, p, depth+1)
	}
	return nil
}

// added reports cur and, for a directory, everything below it.
func (d *dirDiff) added(ctx context.Context, cur *manifest.Node, abs, p string, depth int) error {
	if err := d.fn(Change{Path: p, Kind: ChangeAdded}); err != nil {
		return err
	}
	if cur.Type == manifest.TypeDir {
		return d.dir(ctx, chunk.ID{}, abs, p, depth+1)
	}
	return nil
}

// sameContent reads the regular file abs and reports whether it chunks to
// exactly ids. It stops at the first chunk that differs.
func (d *dirDiff) sameContent(abs string, ids []chunk.ID) (bool, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("repo: diff: open %s: %w", abs, err)
	}
	defer f.Close()
	d.chunker.Reset(f)
	for i := 0; ; i++ {
		c, err := d.chunker.Next()
		if errors.Is(err, io.EOF) {
			return i == len(ids), nil
		}
		if err != nil {
			return false, fmt.Errorf("repo: diff: read %s: %w", abs, err)
		}
		if i >= len(ids) || chunk.Hash(c.Data) != ids[i] {
			return false, nil
		}
	}
}

// lstatNode builds the node a backup would store for abs, without its
// content, and returns the file's link count. ok is false when the entry
// is gone or of a kind that backups skip (sockets, devices).
func lstatNode(abs, name string) (n manifest.Node, nlink uint64, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return n, 0, false, nil
		}
		return n, 0, false, fmt.Errorf("repo: diff: lstat %s: %w", abs, err)
	}
	n = manifest.Node{
		Name: name, Mode: st.Mode & 07777, UID: st.Uid, GID: st.Gid, MtimeNs: st.Mtim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = manifest.TypeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = manifest.TypeDir
	case unix.S_IFLNK:
		n.Type = manifest.TypeSymlink
		if n.Target, err = os.Readlink(abs); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return n, 0, false, nil
			}
			return n, 0, false, fmt.Errorf("repo: diff: readlink %s: %w", abs, err)
		}
	case unix.S_IFIFO:
		n.Type = manifest.TypeFIFO
	default:
		return n, 0, false, nil
	}
	if n.Xattrs, err = readXattrs(abs); err != nil {
		return n, 0, false, err
	}
	return n, uint64(st.Nlink), true, nil
}
