package repo

import (
	"context"
	"errors"
	"fmt"
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

// display returns the file's final path below the target, for messages.
func (f *rfile) display() string { return joinRel(f.dir.rel, f.node.Name) }

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// maxPlanEntries bounds the entries of a snapshot that Restore accepts.
// Trees are shared by ID, so a small hostile repository could describe an
// exponentially large directory; real sandboxes hold well under a million
// entries.
const maxPlanEntries = 1 << 24

// plan loads every tree of the snapshot and checks it: names, depth, and
// that every chunk of every file is indexed as a data blob and the chunks
// add up to the file's size. Nothing is written.
func (x *restorer) plan(ctx context.Context, rootTree chunk.ID) error {
	trees := make(map[chunk.ID]*manifest.Tree)
	links := make(map[uint64]*rfile)
	x.linkNames = make(map[uint64]uint64)
	entries := 0
	x.dirs = []*rdir{{}}
	ids := []chunk.ID{rootTree}
	for i := 0; i < len(x.dirs); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := x.dirs[i]
		if d.depth > manifest.MaxDepth {
			return fmt.Errorf("%w: %q is more than %d directories deep", ErrUnsafePath, d.rel, manifest.MaxDepth)
		}
		t, ok := trees[ids[i]]
		if !ok {
			var err error
			if t, err = x.loadTree(ctx, ids[i], d.rel); err != nil {
				return err
			}
			trees[ids[i]] = t
		}
		if entries += len(t.Nodes); entries > maxPlanEntries {
			return fmt.Errorf("%w: more than %d entries", manifest.ErrInvalid, maxPlanEntries)
		}
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
				ids = append(ids, n.Subtree)
			case manifest.TypeFile:
				f := &rfile{dir: d, node: n, fd: -1}
				if err := x.checkContent(f); err != nil {
					return err
				}
				if n.LinkID != 0 {
					x.linkNames[n.LinkID]++
					if l, ok := links[n.LinkID]; ok {
						f.leader = l
					} else {
						links[n.LinkID] = f
					}
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
				return fmt.Errorf("%q: %w: unknown type %v", joinRel(d.rel, n.Name), manifest.ErrInvalid, n.Type)
			}
		}
	}
	if p := x.opts.Progress; p != nil {
		p.TotalFiles.Add(int64(x.nFiles))
		p.TotalBytes.Add(int64(x.nBytes))
	}
	return nil
}

// loadTree loads and checks the tree of directory rel.
func (x *restorer) loadTree(ctx context.Context, id chunk.ID, rel string) (*manifest.Tree, error) {
	t, err := x.r.loadTree(ctx, id)
	if errors.Is(err, manifest.ErrBadName) {
		return nil, fmt.Errorf("%w: directory %q: %w", ErrUnsafePath, displayRel(rel), err)
	}
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", displayRel(rel), err)
	}
	if err := checkTree(rel, t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkTree refuses a tree whose names could escape its directory or
// collide: DecodeTree already refuses them, but the restore must not
// depend on a decoder's checks for its safety.
func checkTree(rel string, t *manifest.Tree) error {
	for i := range t.Nodes {
		name := t.Nodes[i].Name
		if err := manifest.ValidName(name); err != nil {
			return fmt.Errorf("%w: %q in directory %q: %w", ErrUnsafePath, name, displayRel(rel), err)
		}
		if i > 0 && t.Nodes[i-1].Name >= name {
			return fmt.Errorf("%w: %q in directory %q: %w", ErrUnsafePath, name, displayRel(rel), manifest.ErrUnsorted)
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
