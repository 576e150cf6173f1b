package manifest

import (
	"context"
	"errors"
	"fmt"

	"github.com/sandsnap/sandsnap/chunk"
)

// SkipDir, returned by a Walk or Diff callback for a directory node, skips
// that directory's subtree without loading it. Returned for any other node,
// it skips the remaining entries of the directory that holds the node (as
// io/fs.SkipDir does). Walk and Diff never return it.
var SkipDir = errors.New("manifest: skip this directory")

// MaxDepth is how deep Walk and Diff descend before they report
// ErrCorrupt. Trees are addressed by hash, so a cycle cannot exist in a
// verified repository; the limit keeps a loader that returns wrong trees
// from recursing without end.
const MaxDepth = 1 << 14

// TreeLoader returns the decoded tree with ID id. Walk and Diff call it
// from the calling goroutine, once per tree they visit, and wrap its error
// with the tree's ID and path.
type TreeLoader func(ctx context.Context, id chunk.ID) (*Tree, error)

// Walk calls fn for every node below the tree root, depth first, in name
// order, a directory before its entries. path is slash-joined and relative
// to root ("a", "a/b"). n aliases the loaded tree and must not be
// modified. A zero root is an empty tree and is not loaded. Walk stops at
// the first error from fn (other than SkipDir) or load, and returns it.
func Walk(ctx context.Context, load TreeLoader, root chunk.ID, fn func(path string, n *Node) error) error {
	return walk(ctx, load, root, "", 0, fn)
}

func walk(ctx context.Context, load TreeLoader, id chunk.ID, dir string, depth int, fn func(string, *Node) error) error {
	t, err := loadTree(ctx, load, id, dir, depth)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := joinPath(dir, n.Name)
		if err := fn(p, n); err != nil {
			if !errors.Is(err, SkipDir) {
				return err
			}
			if n.Type != TypeDir {
				return nil
			}
			continue
		}
		if n.Type == TypeDir {
			if err := walk(ctx, load, n.Subtree, p, depth+1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadTree loads the tree of directory path dir ("" for the root); a zero
// id is the empty tree.
func loadTree(ctx context.Context, load TreeLoader, id chunk.ID, dir string, depth int) (*Tree, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: %q is more than %d directories deep", ErrCorrupt, dir, MaxDepth)
	}
	if id.IsZero() {
		return &Tree{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("manifest: load tree %s of %q: %w", id.Str(), displayPath(dir), err)
	}
	if t == nil {
		return nil, fmt.Errorf("%w: loader returned no tree for %s of %q", ErrCorrupt, id.Str(), displayPath(dir))
	}
	return t, nil
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func displayPath(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

// ChangeKind says how a path differs between two trees.
type ChangeKind uint8

const (
	Added    ChangeKind = 1 // only in the new tree
	Removed  ChangeKind = 2 // only in the old tree
	Modified ChangeKind = 3 // in both, same type, different fields
)

// String returns "added", "removed", "modified" or "kind(N)".
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Change is one difference found by Diff. Old is nil for Added, New is nil
// for Removed; both alias loaded trees and must not be modified.
type Change struct {
	Path string // slash-joined, relative to the roots
	Kind ChangeKind
	Old  *Node
	New  *Node
}

// Diff calls fn for every path that differs between the trees a (old) and
// b (new), depth first, in name order, a directory before its entries:
//   - a path in one tree only is Removed or Added, and so is everything
//     below it (fn may return SkipDir to not load those subtrees);
//   - a path in both with the same type is Modified when any field but
//     Subtree differs; a directory whose Subtree differs is descended
//     into, whether or not it is Modified itself;
//   - a path whose type changed is Removed (with its subtree), then Added.
//
// Subtrees with equal IDs are skipped without being loaded, so the cost of
// Diff follows the size of the change, not of the trees. A zero ID is an
// empty tree. Diff stops at the first error from fn (other than SkipDir)
// or load, and returns it.
func Diff(ctx context.Context, load TreeLoader, a, b chunk.ID, fn func(Change) error) error {
	return diff(ctx, load, a, b, "", 0, fn)
}

// errSkipRest, internal to diff, carries a SkipDir for a non-directory
// up to the loop of the directory that holds it.
var errSkipRest = errors.New("manifest: skip the rest of this directory")

func diff(ctx context.Context, load TreeLoader, a, b chunk.ID, dir string, depth int, fn func(Change) error) error {
	if a == b {
		return nil
	}
	ta, err := loadTree(ctx, load, a, dir, depth)
	if err != nil {
		return err
	}
	tb, err := loadTree(ctx, load, b, dir, depth)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var err error
		switch {
		case j == len(tb.Nodes) || (i < len(ta.Nodes) && ta.Nodes[i].Name < tb.Nodes[j].Name):
			err = diffOne(ctx, load, Removed, &ta.Nodes[i], dir, depth, fn)
			i++
		case i == len(ta.Nodes) || tb.Nodes[j].Name < ta.Nodes[i].Name:
			err = diffOne(ctx, load, Added, &tb.Nodes[j], dir, depth, fn)
			j++
		default:
			err = diffBoth(ctx, load, &ta.Nodes[i], &tb.Nodes[j], dir, depth, fn)
			i++
			j++
		}
		if errors.Is(err, errSkipRest) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// diffOne reports n, which only one side has, and everything below it.
func diffOne(ctx context.Context, load TreeLoader, kind ChangeKind, n *Node, dir string, depth int, fn func(Change) error) error {
	c := Change{Path: joinPath(dir, n.Name), Kind: kind}
	if kind == Added {
		c.New = n
	} else {
		c.Old = n
	}
	if err := callChange(fn, c, n); err != nil {
		if errors.Is(err, SkipDir) {
			return nil
		}
		return err
	}
	if n.Type != TypeDir {
		return nil
	}
	return walk(ctx, load, n.Subtree, c.Path, depth+1, func(p string, m *Node) error {
		c := Change{Path: p, Kind: kind}
		if kind == Added {
			c.New = m
		} else {
			c.Old = m
		}
		return fn(c)
	})
}

func diffBoth(ctx context.Context, load TreeLoader, before, after *Node, dir string, depth int, fn func(Change) error) error {
	if before.Type != after.Type {
		if err := diffOne(ctx, load, Removed, before, dir, depth, fn); err != nil {
			return err
		}
		return diffOne(ctx, load, Added, after, dir, depth, fn)
	}
	p := joinPath(dir, after.Name)
	if !before.equalMeta(after) {
		if err := callChange(fn, Change{Path: p, Kind: Modified, Old: before, New: after}, after); err != nil {
			if errors.Is(err, SkipDir) {
				return nil
			}
			return err
		}
	}
	if after.Type == TypeDir && before.Subtree != after.Subtree {
		return diff(ctx, load, before.Subtree, after.Subtree, p, depth+1, fn)
	}
	return nil
}

// callChange calls fn and turns a SkipDir for a non-directory into
// errSkipRest; a SkipDir for a directory is returned as is, for the caller
// to not descend.
func callChange(fn func(Change) error, c Change, n *Node) error {
	err := fn(c)
	if errors.Is(err, SkipDir) && n.Type != TypeDir {
		return errSkipRest
	}
	return err
}
