package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// TestIncrementalUploadsOnlyDeltas checks issue 5's bound: after a
// developer-like change (20 files edited, a package of 30 files added, 5
// deleted, 100 touched), a backup with the parent uploads at most 1.2x the
// compressed size of the changed and added files plus the trees that
// changed.
func TestIncrementalUploadsOnlyDeltas(t *testing.T) {
	ctx := context.Background()
	r := newCachedRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	if _, err := bench.Generate(src, bench.KindNode, bench.Options{Seed: 1, Scale: 0.03}); err != nil {
		t.Fatal(err)
	}
	h1, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := bench.Mutate(src, bench.MutateDev, bench.MutateOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := r.Backup(ctx, src, BackupOptions{AutoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if h2.Parent == nil || *h2.Parent != h1.ID {
		t.Fatalf("parent = %v; want %s", h2.Parent, h1.ID)
	}

	var files int
	for _, fc := range append(ms.Changed, ms.Added...) {
		data, err := os.ReadFile(filepath.Join(src, fc.Path))
		if err != nil {
			t.Fatal(err)
		}
		files += len(r.enc.EncodeAll(data, nil))
	}
	old := r.treeIDs(ctx, t, h1.ID)
	var trees, changedTrees int
	for id := range r.treeIDs(ctx, t, h2.ID) {
		if _, ok := old[id]; ok {
			continue
		}
		raw, err := r.tc.load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		trees += len(r.enc.EncodeAll(raw, nil))
		changedTrees++
	}
	bound := 1.2 * float64(files+trees)
	t.Logf("uploaded %d bytes; changed+added files compress to %d, %d changed trees to %d; bound %.0f; files read %d of %d",
		h2.Stats.BytesUploaded, files, changedTrees, trees, bound, h2.Stats.FilesRead, h2.Stats.Files)
	if float64(h2.Stats.BytesUploaded) > bound {
		t.Errorf("incremental uploaded %d bytes; want at most %.0f", h2.Stats.BytesUploaded, bound)
	}
	// A touched file has a new mtime, so it is read (and found to hold
	// known chunks); nothing else is.
	if want := uint64(len(ms.Changed) + len(ms.Added) + len(ms.Touched)); h2.Stats.FilesRead != want {
		t.Errorf("files read = %d; want the %d changed, added and touched", h2.Stats.FilesRead, want)
	}
}

// treeIDs returns the IDs of every tree of snapshot id.
func (r *Repository) treeIDs(ctx context.Context, t *testing.T, id chunk.ID) map[chunk.ID]struct{} {
	t.Helper()
	s, err := r.Snapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[chunk.ID]struct{}{s.Tree: {}}
	err = manifest.Walk(ctx, r.loadTree, s.Tree, func(_ string, n *manifest.Node) error {
		if n.Type == manifest.TypeDir {
			ids[n.Subtree] = struct{}{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
