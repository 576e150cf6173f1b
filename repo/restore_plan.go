package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
)

// rdir is one directory of the plan.
type rdir struct {
	rel   string         // slash-separated path below the target; "" is the target
	depth int            // 0 for the target
	tree  *manifest.Tree // shared between directories with the same subtree
	ents  []rent         // parallel to tree.Nodes
	// fresh: created by this restore, so it holds nothing yet; set by
	// the structure pass before the directory is handed on.
	fresh bool
}

// rent is the restore state of one entry of a directory.
type rent struct {
	file  *rfile // regular files
	sub   *rdir  // directories
	fresh bool   // created by this restore: no stale xattrs to remove
}

// rfile is one regular-file name of the plan.
type rfile struct {
	dir    *rdir
	node   *manifest.Node
	leader *rfile // for the second and later names of a hard-linked inode

	// Set by the structure pass, read by the later ones.
	write bool   // content is written by the data phase
	tmp   string // written under this temporary name, renamed at the end

	mu    sync.Mutex // guards the fields below, during the data phase
	fd    int        // open for writing, or -1
	users int        // writers using fd now
	left  int        // chunk placements not yet written
}

// name returns the file's current name in its directory.
func (f *rfile) name() string {
	if f.tmp != "" {
		return f.tmp
	}
	return f.node.Name
}

// path returns the file's current path below the target.
func (f *rfile) path() string { return joinRel(f.dir.rel, f.name()) }

// display returns the file's final path below the target, for messages:
// elided in the middle when very long (elidePath).
func (f *rfile) display() string { return elidePath(joinRel(f.dir.rel, f.node.Name)) }

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// plan checks the snapshot against its declaration and the restore's
// limits, then loads every tree and checks it: names, hard-link groups,
// and that every chunk of every file is indexed as a data blob and the
// chunks add up to the file's size. Nothing is written.
//
// The declaration is checked first (no tree loaded), then the trees are
// counted once per unique tree (treeCounter), so that a snapshot which
// expands to more than it declares or than the limits allow is refused
// after work that follows its size in the repository; only then is the
// state per entry built.
func (x *restorer) plan(ctx context.Context, snap *manifest.Snapshot) error {
	tc := newTreeCounter(x.loadTree, true)
	if err := tc.checkSnapshot(ctx, snap, x.opts.Limits.withDefaults(x.opts.Untrusted), !x.opts.Untrusted); err != nil {
		return err
	}
	links := make(map[uint64]*rfile)
	x.linkNames = make(map[uint64]uint64)
	x.dirs = []*rdir{{}}
	ids := []chunk.ID{snap.Tree}
	for i := 0; i < len(x.dirs); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, ok := tc.trees[ids[i]]
		if !ok {
			t = &manifest.Tree{} // the zero ID: an empty tree
		}
		if err := x.planDir(x.dirs[i], t, links, &ids); err != nil {
			return err
		}
	}
	if p := x.opts.Progress; p != nil {
		p.TotalFiles.Add(int64(x.nFiles))
		p.TotalBytes.Add(int64(x.nBytes))
	}
	return nil
}

// planDir builds the state of directory d, whose tree is t: its
// subdirectories join x.dirs (their tree IDs join ids), its files
// x.files. links holds the first name of each hard-link group met so far.
func (x *restorer) planDir(d *rdir, t *manifest.Tree, links map[uint64]*rfile, ids *[]chunk.ID) error {
	d.tree = t
	d.ents = make([]rent, len(t.Nodes))
	for j := range t.Nodes {
		n := &t.Nodes[j]
		switch n.Type {
		case manifest.TypeDir:
			x.nDirs++
			sub := &rdir{rel: joinRel(d.rel, n.Name), depth: d.depth + 1}
			d.ents[j].sub = sub
			x.dirs = append(x.dirs, sub)
			*ids = append(*ids, n.Subtree)
		case manifest.TypeFile:
			f := &rfile{dir: d, node: n, fd: -1}
			if err := x.checkContent(f); err != nil {
				return err
			}
			if err := x.joinLinkGroup(f, links); err != nil {
				return err
			}
			d.ents[j].file = f
			x.files = append(x.files, f)
			x.nFiles++
			x.nBytes += n.Size
		case manifest.TypeSymlink:
			x.nSymlinks++
		case manifest.TypeFIFO:
			x.nOther++
		default:
			return fmt.Errorf("%q: %w: unknown type %v", elidePath(joinRel(d.rel, n.Name)), manifest.ErrInvalid, n.Type)
		}
	}
	return nil
}

// joinLinkGroup makes f a later name of its hard-link group, if the group
// already has a first name, after checking that the two agree: one inode
// has one content, size, mode, owner, mtime and set of xattrs, and a
// snapshot that says otherwise cannot be restored as it says.
func (x *restorer) joinLinkGroup(f *rfile, links map[uint64]*rfile) error {
	n := f.node
	if n.LinkID == 0 {
		return nil
	}
	x.linkNames[n.LinkID]++
	l, ok := links[n.LinkID]
	if !ok {
		links[n.LinkID] = f
		return nil
	}
	if what := nodeDiff(l.node, n); len(what) > 0 {
		return fmt.Errorf("%w: hard links %q and %q (link group %d) differ in %s",
			manifest.ErrInvalid, l.display(), f.display(), n.LinkID, strings.Join(what, ", "))
	}
	f.leader = l
	return nil
}

// loadTree loads and checks the tree of the directory whose path rel
// returns (a treeLoader).
func (x *restorer) loadTree(ctx context.Context, id chunk.ID, rel func() string) (*manifest.Tree, error) {
	t, err := x.r.loadTree(ctx, id)
	if errors.Is(err, manifest.ErrBadName) {
		return nil, fmt.Errorf("%w: directory %q: %w", ErrUnsafePath, rel(), err)
	}
	if err == nil {
		err = checkTree(t)
	}
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", rel(), err)
	}
	return t, nil
}

// checkTree refuses a tree whose names could escape its directory or
// collide (ErrUnsafePath): DecodeTree already refuses them, but the
// restore must not depend on a decoder's checks for its safety.
func checkTree(t *manifest.Tree) error {
	for i := range t.Nodes {
		name := t.Nodes[i].Name
		if err := manifest.ValidName(name); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrUnsafePath, name, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= name {
			return fmt.Errorf("%w: %q: %w", ErrUnsafePath, name, manifest.ErrUnsorted)
		}
	}
	return nil
}

func displayRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// checkContent checks that every chunk of f is an indexed data blob and
// that they add up to its size.
func (x *restorer) checkContent(f *rfile) error {
	var size uint64
	for _, id := range f.node.Content {
		e, ok := x.r.idx.lookup(id)
		if !ok {
			return fmt.Errorf("%w: chunk %s of %q", ErrBlobNotFound, id.Str(), f.display())
		}
		if e.Type != pack.DataBlob {
			return fmt.Errorf("%q: chunk %s is not a data blob: %w", f.display(), id.Str(), pack.ErrCorrupt)
		}
		size += uint64(e.Length)
	}
	if size != f.node.Size {
		return fmt.Errorf("%q: %w: chunks hold %d bytes, size is %d", f.display(), manifest.ErrInvalid, size, f.node.Size)
	}
	return nil
}
