package repo

import (
	"context"
	"errors"
	"strings"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// checkBounds reports snapshot s (object name) when its trees hold more
// than it declares or than a trusted restore accepts (DefaultLimits), as
// Restore would refuse it, and then its hard-link groups whose names
// disagree. A tree that cannot be loaded stops only these checks: the
// walk has reported it. It returns an error only when ctx ends.
func (v *verifier) checkBounds(ctx context.Context, name string, s *manifest.Snapshot) error {
	err := v.counter.checkSnapshot(ctx, s, DefaultLimits(), false)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrLimit):
		v.problem(name, "", "%v", err)
		return nil
	case err != nil:
		return nil
	}
	w := &linkWalk{v: v, name: name, seen: make(map[chunk.ID]bool), first: make(map[uint64]linkName)}
	return w.tree(ctx, s.Tree)
}

// linkWalk finds the hard-link groups of one snapshot whose names
// disagree (content, size, mode, owner, mtime, xattrs): one inode cannot
// be restored as two. It visits each tree once, and only trees that hold
// hard-linked files (the counter's memo says which, so the walk follows
// checkBounds' count).
type linkWalk struct {
	v     *verifier
	name  string
	seen  map[chunk.ID]bool
	first map[uint64]linkName // each group's first name met
	names []string            // the path of the tree being walked
}

type linkName struct {
	path string
	node *manifest.Node
}

func (w *linkWalk) tree(ctx context.Context, id chunk.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tc, ok := w.v.counter.memo[id]; !ok || tc.links == 0 || w.seen[id] {
		return nil
	}
	w.seen[id] = true
	t, err := w.v.r.loadTree(ctx, id)
	if err != nil {
		return ctx.Err() // reported by the walk
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == manifest.TypeDir:
			w.names = append(w.names, n.Name)
			err = w.tree(ctx, n.Subtree)
			w.names = w.names[:len(w.names)-1]
			if err != nil {
				return err
			}
		case n.Type == manifest.TypeFile && n.LinkID != 0:
			w.file(n)
		}
	}
	return nil
}

// file compares a hard-linked file with its group's first name and
// reports a disagreement once per group.
func (w *linkWalk) file(n *manifest.Node) {
	p := elidePath(strings.Join(append(w.names, n.Name), "/"))
	l, ok := w.first[n.LinkID]
	if !ok {
		w.first[n.LinkID] = linkName{path: p, node: n}
		return
	}
	if l.node == nil {
		return // already reported
	}
	if what := nodeDiff(l.node, n); len(what) > 0 {
		w.v.problem(w.name, p, "%v: hard links %q and %q (link group %d) differ in %s",
			manifest.ErrInvalid, l.path, p, n.LinkID, strings.Join(what, ", "))
		w.first[n.LinkID] = linkName{path: l.path}
	}
}
