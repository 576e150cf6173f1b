package repo_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/mem"
)

// forkCount is how many sandboxes the fork tests run at once.
const forkCount = 8

// loadCounter counts the Loads of each object name that reach the store
// it wraps: under eight caches, it shows what the shared store served.
type loadCounter struct {
	store.Store
	mu    sync.Mutex
	loads map[string]int
}

func (c *loadCounter) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	c.mu.Lock()
	c.loads[name]++
	c.mu.Unlock()
	return c.Store.Load(ctx, name, offset, length, fn)
}

// packLoads returns the Loads of pack objects: in all, and the most of any
// one pack.
func (c *loadCounter) packLoads() (total, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, n := range c.loads {
		if strings.HasPrefix(name, "packs/") {
			total += n
			most = max(most, n)
		}
	}
	return total, most
}

// storeSize returns the number and total size of st's objects under prefix.
func storeSize(t *testing.T, st store.Store, prefix string) (n int, size int64) {
	t.Helper()
	err := st.List(context.Background(), prefix, func(fi store.Info) error {
		n++
		size += fi.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

// copyStore returns a new memory store holding st's objects.
func copyStore(t *testing.T, st store.Store) store.Store {
	t.Helper()
	ctx := context.Background()
	dst := mem.New()
	err := st.List(ctx, "", func(fi store.Info) error {
		data, err := store.LoadAll(ctx, st, fi.Name, 0, 0)
		if err != nil {
			return err
		}
		return dst.Save(ctx, fi.Name, data, store.SaveOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// parallel runs fn(0) … fn(n-1) on their own goroutines, waits, and
// returns their errors by index.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errs
}

func checkAll(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fork %d: %s: %v", i, what, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestForks follows one base snapshot through eight sandboxes on one
// host, each a separate Repository (as eight processes would be) over its
// own cache.Store, all sharing one cache folder and one shared store:
//
//  1. the eight restore the base at once, and the shared store serves each
//     pack once;
//  2. a backup of a fork just restored reads no file and uploads no pack;
//  3. the forks change differently and back up at once with the base as
//     parent: the repository grows by no more than the forks' changes.
func TestForks(t *testing.T) {
	if testing.Short() {
		t.Skip("eight restores and backups of a generated tree")
	}
	ctx := context.Background()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if _, err := bench.Generate(src, bench.KindNode, bench.Options{Seed: 1, Scale: 0.02}); err != nil {
		t.Fatal(err)
	}
	// Small data packs, so that the base is several packs and "each pack
	// once" means something.
	shared := mem.New()
	seed, err := repo.Init(ctx, shared, repo.InitOptions{DataPackSize: 1 << 20}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := seed.Backup(ctx, src, repo.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs, _ := storeSize(t, shared, "packs/")
	if packs < 2 {
		t.Fatalf("base has %d packs; want several", packs)
	}

	counter := &loadCounter{Store: shared, loads: map[string]int{}}
	cacheDir := filepath.Join(tmp, "cache")
	repos := make([]*repo.Repository, forkCount)
	caches := make([]*cache.Store, forkCount)
	for i := range repos {
		caches[i], err = cache.New(counter, filepath.Join(cacheDir, "objects"), cache.Options{VerifyReader: repo.VerifyObjectReader})
		if err != nil {
			t.Fatal(err)
		}
		if repos[i], err = repo.Open(ctx, caches[i], repo.Options{CacheDir: cacheDir}); err != nil {
			t.Fatal(err)
		}
	}
	forks := make([]string, forkCount)
	for i := range forks {
		forks[i] = filepath.Join(tmp, fmt.Sprintf("fork%d", i))
	}

	// 1. Eight restores at once, one fetch of each pack.
	checkAll(t, "restore", parallel(forkCount, func(i int) error {
		_, err := repos[i].Restore(ctx, base.ID, forks[i], repo.RestoreOptions{})
		return err
	}))
	for _, f := range forks {
		sameTree(t, src, f)
	}
	// A cache may fill a pack it could not lock in time a second time;
	// the slack of 2 allows that, not a fetch per fork.
	total, most := counter.packLoads()
	if total > packs+2 {
		t.Errorf("the store served %d pack loads for %d packs (at most %d of one pack); want each pack once", total, packs, most)
	}
	t.Logf("restore: %d packs, %d pack loads from the store (at most %d of one)", packs, total, most)

	// 2. A backup of an unchanged fork reads nothing and uploads no pack,
	// whether the parent is given or found by AutoParent.
	noop := []repo.BackupOptions{{AutoParent: true}, {Parent: base.ID}}
	for i, opts := range noop {
		h, err := repos[i].Backup(ctx, forks[i], opts)
		if err != nil {
			t.Fatal(err)
		}
		if h.Stats.BytesRead != 0 || h.Stats.PacksUploaded != 0 || h.Parent == nil || *h.Parent != base.ID {
			t.Errorf("backup of unchanged fork %d (%+v): read %d bytes, uploaded %d packs, parent %v; want 0, 0, %s",
				i, opts, h.Stats.BytesRead, h.Stats.PacksUploaded, h.Parent, base.ID)
		}
	}

	// 3. Each fork changes; what each backup adds alone is measured in a
	// copy of the repository, then the eight back up at once into the
	// shared one. Concurrent writers know nothing of each other's new
	// blobs, so content two forks share could be stored twice; the forks'
	// changes differ, so the growth must stay the sum of what each adds
	// alone (10% slack for that race).
	for i, f := range forks {
		if _, err := bench.Mutate(f, bench.MutateDev, bench.MutateOptions{Seed: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	_, before := storeSize(t, shared, "")
	var alone int64
	for _, f := range forks {
		cp := copyStore(t, shared)
		r, err := repo.Open(ctx, cp, repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, b0 := storeSize(t, cp, "")
		if _, err := r.Backup(ctx, f, repo.BackupOptions{Parent: base.ID}); err != nil {
			t.Fatal(err)
		}
		_, b1 := storeSize(t, cp, "")
		alone += b1 - b0
	}
	handles := make([]repo.Handle, forkCount)
	checkAll(t, "backup", parallel(forkCount, func(i int) error {
		var err error
		handles[i], err = repos[i].Backup(ctx, forks[i], repo.BackupOptions{Parent: base.ID})
		return err
	}))
	_, after := storeSize(t, shared, "")
	var uploaded int64
	seen := map[chunk.ID]bool{}
	for i, h := range handles {
		uploaded += int64(h.Stats.BytesUploaded)
		if seen[h.ID] || h.Stats.FilesRead == 0 || h.Stats.FilesReused == 0 {
			t.Errorf("fork %d: snapshot %s (seen before: %v), %d files read, %d reused; want a new snapshot, some of each",
				i, h.ID.Str(), seen[h.ID], h.Stats.FilesRead, h.Stats.FilesReused)
		}
		seen[h.ID] = true
	}
	growth := after - before
	t.Logf("backup: repository grew %d bytes; uploads %d; each fork alone %d in all", growth, uploaded, alone)
	if growth > uploaded {
		t.Errorf("repository grew %d bytes, more than the %d the backups report uploading", growth, uploaded)
	}
	if growth*10 > alone*11 {
		t.Errorf("repository grew %d bytes; the forks alone add %d: more than 10%% duplicated", growth, alone)
	}

	// Every fork's snapshot restores to exactly the fork, from the shared
	// store without a cache.
	check, err := repo.Open(ctx, shared, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, "restore of its snapshot", parallel(forkCount, func(i int) error {
		_, err := check.Restore(ctx, handles[i].ID, filepath.Join(tmp, fmt.Sprintf("check%d", i)), repo.RestoreOptions{})
		return err
	}))
	for i, f := range forks {
		sameTree(t, f, filepath.Join(tmp, fmt.Sprintf("check%d", i)))
	}
}
