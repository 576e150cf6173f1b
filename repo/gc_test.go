package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/local"
	"github.com/sandsnap/sandsnap/store/mem"
)

// testClock is a store clock that tests advance by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testLeaseTTL = time.Minute

// newGCRepo initializes a repository with small packs in st.
func newGCRepo(t *testing.T, st store.Store) *Repository {
	t.Helper()
	r, err := Init(context.Background(), st, InitOptions{DataPackSize: 1 << 20, TreePackSize: 64 << 10},
		Options{Workers: 2, LeaseTTL: testLeaseTTL, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// randFiles returns n random (incompressible) files of size bytes under
// prefix, so that pack sizes track content sizes closely.
func randFiles(seed uint64, prefix string, n, size int) map[string][]byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make(map[string][]byte)
	for i := range n {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out[filepath.Join(prefix, "f"+string(rune('a'+i)))] = b
	}
	return out
}

// gcSource writes source directory i: unique files plus a subtree shared
// by every source.
func gcSource(t *testing.T, i int) string {
	t.Helper()
	dir := t.TempDir()
	files := randFiles(uint64(100+i), "own", 3, 40<<10)
	for k, v := range randFiles(1, "shared", 2, 30<<10) {
		files[k] = v
	}
	writeTree(t, dir, files)
	return dir
}

// backupRepackable backs up two sources that share a subtree into r: the
// first expires after a minute, the second (whose handle and source it
// returns) has no TTL. The expired snapshot holds the shared blobs in its
// packs, so once it has expired gc repacks them.
func backupRepackable(t *testing.T, r *Repository) (Handle, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.Backup(ctx, gcSource(t, 1), BackupOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	src := gcSource(t, 0)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h, src
}

// readFiles returns every regular file under dir by relative path.
func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// restoresLike restores id into a fresh folder and compares its files with
// src's.
func restoresLike(t *testing.T, r *Repository, id chunk.ID, src string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Restore(context.Background(), id, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore %s: %v", id.Str(), err)
	}
	want, got := readFiles(t, src), readFiles(t, dst)
	if len(want) != len(got) {
		t.Fatalf("restore %s: %d files, want %d", id.Str(), len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("restore %s: %s differs", id.Str(), k)
		}
	}
}

func verifyClean(t *testing.T, r *Repository) {
	t.Helper()
	rep, err := r.Verify(context.Background(), VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
}

func runGC(t *testing.T, r *Repository, opts GCOptions) GCReport {
	t.Helper()
	rep, err := r.GC(context.Background(), opts)
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	t.Logf("gc: %+v", rep)
	return rep
}

// objectNames returns every object's name and ETag.
func objectNames(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := make(map[string]string)
	if err := st.List(context.Background(), "", func(fi store.Info) error { out[fi.Name] = fi.ETag; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGCShrinksToLive: 20 snapshots, 15 of them expired (or removed), and
// two gc runs with no writer leave about what the 5 live ones need: no
// more than a fresh repository holding only them, plus a small slack; the
// live ones restore and verify is clean.
func TestGCShrinksToLive(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		useTTL    bool // expire by TTL and the store clock; else Remove
		threshold float64
	}{
		{"mem ttl", true, 0},
		{"mem ttl repack all", true, 1},
		{"local remove", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newTestClock()
			var st store.Store = mem.NewWithClock(clock.now)
			if !tt.useTTL {
				ls, err := local.Create(filepath.Join(t.TempDir(), "repo"))
				if err != nil {
					t.Fatal(err)
				}
				st = ls
			}
			r := newGCRepo(t, st)
			var live []Handle
			var liveSrc []string
			for i := range 20 {
				src := gcSource(t, i)
				opts := BackupOptions{}
				expire := i%4 != 1 // 15 of 20, interleaved with the live ones
				if expire && tt.useTTL {
					opts.TTL = time.Hour
				}
				h, err := r.Backup(ctx, src, opts)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case !expire:
					live, liveSrc = append(live, h), append(liveSrc, src)
				case !tt.useTTL:
					if err := r.Remove(ctx, h.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(live) != 5 {
				t.Fatalf("%d live snapshots", len(live))
			}
			before := objectBytes(t, st, packPrefix)
			clock.advance(2 * time.Hour)
			rep1 := runGC(t, r, GCOptions{RepackThreshold: tt.threshold})
			if tt.useTTL && rep1.ExpiredRemoved != 15 {
				t.Errorf("first gc removed %d expired snapshots, want 15", rep1.ExpiredRemoved)
			}
			if rep1.PacksCondemned == 0 || rep1.PacksDeleted != 0 {
				t.Errorf("first gc: condemned %d, deleted %d; want some condemned and none deleted", rep1.PacksCondemned, rep1.PacksDeleted)
			}
			rep2 := runGC(t, r, GCOptions{RepackThreshold: tt.threshold})
			if rep2.PacksDeleted != rep1.PacksCondemned {
				t.Errorf("second gc deleted %d packs, want the %d the first condemned", rep2.PacksDeleted, rep1.PacksCondemned)
			}
			after := objectBytes(t, st, packPrefix)

			fresh := newGCRepo(t, mem.New())
			for _, src := range liveSrc {
				if _, err := fresh.Backup(ctx, src, BackupOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			want := objectBytes(t, fresh.Store(), packPrefix)
			t.Logf("packs: %d bytes before gc, %d after, %d in a fresh repository of the live snapshots", before, after, want)
			if slack := want/20 + 16<<10; after > want+slack {
				t.Errorf("after gc the packs hold %d bytes; a fresh repository of the live snapshots holds %d (slack %d)", after, want, slack)
			}
			hs, err := r.Snapshots(ctx, ListOptions{AllExpired: true})
			if err != nil || len(hs) != 5 {
				t.Errorf("%d snapshots left (%v), want 5", len(hs), err)
			}
			// A fresh process sees the same.
			r2, err := Open(ctx, st, Options{LeaseTTL: testLeaseTTL})
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range live {
				restoresLike(t, r2, h.ID, liveSrc[i])
			}
			verifyClean(t, r2)
			// Nothing left to do.
			if rep := runGC(t, r2, GCOptions{}); rep.PacksCondemned != 0 || rep.PacksDeleted != 0 {
				t.Errorf("third gc condemned %d and deleted %d packs; want none", rep.PacksCondemned, rep.PacksDeleted)
			}
		})
	}
}

// TestGCWriterReuploadsCondemned: a backup that started before gc
// condemned the blobs it reuses uploads them again before it commits; gc
// deletes the condemned packs only after its lease ended, and its
// snapshot restores afterwards.
func TestGCWriterReuploadsCondemned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	r := newGCRepo(t, st)
	src := gcSource(t, 1)
	if _, err := r.Backup(ctx, src, BackupOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	oldPacks := objectNames(t, st)
	clock.advance(2 * time.Hour) // old has expired; its blobs are still indexed

	writeTree(t, src, randFiles(9, "new", 1, 10<<10))
	var reps []GCReport
	r.beforeCommit = func() {
		// The backup has walked and deduplicated against old's packs.
		reps = append(reps, runGC(t, r, GCOptions{}))
		clock.advance(testLeaseTTL / 2) // the writer's lease stays alive
		reps = append(reps, runGC(t, r, GCOptions{}))
	}
	h, err := r.Backup(ctx, src, BackupOptions{})
	r.beforeCommit = nil
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].ExpiredRemoved != 1 || reps[0].PacksCondemned == 0 {
		t.Errorf("gc during the backup: %+v; want the expired snapshot removed and its packs condemned", reps[0])
	}
	if reps[1].PacksDeleted != 0 || reps[1].PacksWaiting == 0 {
		t.Errorf("second gc during the backup: %+v; want nothing deleted while the writer's lease lives", reps[1])
	}
	rep := runGC(t, r, GCOptions{})
	if rep.PacksDeleted == 0 {
		t.Errorf("gc after the backup deleted nothing")
	}
	now := objectNames(t, st)
	for name := range oldPacks {
		if strings.HasPrefix(name, packPrefix) {
			if _, ok := now[name]; ok {
				t.Errorf("pack %s of the expired snapshot survived", name)
			}
		}
	}
	r2, err := Open(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	restoresLike(t, r2, h.ID, src)
	verifyClean(t, r2)
}

// TestGCCrashedWriterLease: a lease left by a crashed writer holds the
// packs condemned while it existed until it expires by the store's clock.
func TestGCCrashedWriterLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	r := newGCRepo(t, st)
	if _, err := r.Backup(ctx, gcSource(t, 1), BackupOptions{TTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, leasePrefix+"crashed", []byte(`{"writer":"crashed"}`), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.advance(20 * time.Second)
	for i, tt := range []struct {
		advance     time.Duration
		wantDeleted bool
	}{
		{0, false},                // condemns, recording the lease
		{testLeaseTTL / 2, false}, // the lease has not expired
		{testLeaseTTL, true},      // now it has
	} {
		clock.advance(tt.advance)
		rep := runGC(t, r, GCOptions{})
		if got := rep.PacksDeleted > 0; got != tt.wantDeleted {
			t.Errorf("run %d: deleted %d packs; want deletion %v", i, rep.PacksDeleted, tt.wantDeleted)
		}
		if i == 0 && (rep.PacksCondemned == 0 || rep.Leases != 1) {
			t.Errorf("run 0: %+v; want packs condemned and one lease seen", rep)
		}
		if _, err := st.Stat(ctx, leasePrefix+"crashed"); errors.Is(err, store.ErrNotFound) != tt.wantDeleted {
			t.Errorf("run %d: lease object: %v; want it removed only once expired", i, err)
		}
	}
	verifyClean(t, r)
}

// TestGCStateConflict: of two writers of gc/state that read the same
// version, one wins and the other fails with ErrConcurrentGC.
func TestGCStateConflict(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		exists bool
	}{{"create", false}, {"replace", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newGCRepo(t, mem.New())
			if tt.exists {
				s, ref, err := r.readGCState(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.writeGCState(ctx, ref, &s); err != nil {
					t.Fatal(err)
				}
			}
			a, refA, err := r.readGCState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, refB := a, refA
			a.Run, b.Run = "a", "b"
			a.Generation++
			b.Generation += 2
			if _, err := r.writeGCState(ctx, refA, &a); err != nil {
				t.Fatalf("first writer: %v", err)
			}
			if _, err := r.writeGCState(ctx, refB, &b); !errors.Is(err, ErrConcurrentGC) || !strings.Contains(err.Error(), "another gc is running") {
				t.Fatalf("second writer: %v; want ErrConcurrentGC", err)
			}
			s, _, err := r.readGCState(ctx)
			if err != nil || s.Run != "a" {
				t.Errorf("state run %q (%v); want the first writer's", s.Run, err)
			}
		})
	}
}

// TestGCConcurrentRuns: two gcs at once never both act on one state
// version; whatever they did, the live snapshot restores and verify is
// clean.
func TestGCConcurrentRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	r := newGCRepo(t, st)
	src := gcSource(t, 0)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := r.Backup(ctx, gcSource(t, i+1), BackupOptions{TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(time.Hour)
	for range 3 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				ri, err := Open(ctx, st, Options{LeaseTTL: testLeaseTTL})
				if err == nil {
					_, err = ri.GC(ctx, GCOptions{})
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrConcurrentGC) {
				t.Fatalf("gc: %v", err)
			}
		}
	}
	runGC(t, r, GCOptions{})
	runGC(t, r, GCOptions{})
	restoresLike(t, r, h.ID, src)
	verifyClean(t, r)
}

// TestGCDryRun: a dry run reports and changes nothing.
func TestGCDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	r := newGCRepo(t, st)
	for i := range 3 {
		if _, err := r.Backup(ctx, gcSource(t, i), BackupOptions{TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(time.Hour)
	runGC(t, r, GCOptions{}) // something condemned, to be deleted next
	for i := range 2 {
		if _, err := r.Backup(ctx, gcSource(t, 10+i), BackupOptions{TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(time.Hour)
	before := objectNames(t, st)
	rep := runGC(t, r, GCOptions{DryRun: true})
	if !rep.DryRun || rep.ExpiredRemoved != 2 || rep.PacksDeleted == 0 || rep.PacksCondemned == 0 {
		t.Errorf("dry run reported %+v; want 2 expired, packs deleted and packs condemned", rep)
	}
	after := objectNames(t, st)
	if len(before) != len(after) {
		t.Errorf("dry run changed the object count from %d to %d", len(before), len(after))
	}
	for name, etag := range before {
		if after[name] != etag {
			t.Errorf("dry run changed %s", name)
		}
	}
}

// TestRemoveSnapshot: Remove deletes a snapshot object; a missing one is
// ErrSnapshotNotFound.
func TestRemoveSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newGCRepo(t, mem.New())
	h, err := r.Backup(ctx, gcSource(t, 0), BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, ErrSnapshotNotFound} {
		if err := r.Remove(ctx, h.ID); !errors.Is(err, want) {
			t.Errorf("remove %d: %v; want %v", i, err, want)
		}
	}
	if _, err := r.Snapshot(ctx, h.ID); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("removed snapshot still loads: %v", err)
	}
}

// TestExpiryByStoreClock: expiry follows the store's clock, whatever the
// host's says; Restore and FS refuse an expired snapshot and leave no
// lease behind.
func TestExpiryByStoreClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	hostFuture := func() time.Time { return time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) }
	r, err := Init(ctx, st, InitOptions{}, Options{Now: hostFuture})
	if err != nil {
		t.Fatal(err)
	}
	src := gcSource(t, 0)
	h, err := r.Backup(ctx, src, BackupOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Created.Equal(clock.now()) {
		t.Errorf("created %v; want the store's time %v", h.Created, clock.now())
	}
	for _, tt := range []struct {
		advance time.Duration
		expired bool
	}{{59 * time.Minute, false}, {time.Minute, true}} {
		clock.advance(tt.advance)
		hs, err := r.Snapshots(ctx, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(hs) == 0; got != tt.expired {
			t.Errorf("after %v: listed %d snapshots; want expired %v", tt.advance, len(hs), tt.expired)
		}
		_, err = r.Restore(ctx, h.ID, filepath.Join(t.TempDir(), "dst"), RestoreOptions{})
		if got := errors.Is(err, ErrExpired); got != tt.expired {
			t.Errorf("after %v: restore: %v; want expired %v", tt.advance, err, tt.expired)
		}
		fsys, err := r.FS(ctx, h.ID)
		if got := errors.Is(err, ErrExpired); got != tt.expired || (err != nil && !got) {
			t.Errorf("after %v: FS: %v; want expired %v", tt.advance, err, tt.expired)
		}
		if err == nil {
			fsys.Close()
		}
	}
	if names := objectNames(t, st); len(names) > 0 {
		for name := range names {
			if strings.HasPrefix(name, clockPrefix) || strings.HasPrefix(name, leasePrefix) {
				t.Errorf("%s left behind", name)
			}
		}
	}
}

// TestIndexPrefersUncondemned: lookups avoid condemned copies; a blob
// whose every copy is condemned counts as absent for writers.
func TestIndexPrefersUncondemned(t *testing.T) {
	t.Parallel()
	blob := chunk.Hash([]byte("blob"))
	p1, p2 := chunk.Hash([]byte("p1")), chunk.Hash([]byte("p2"))
	x := newIndex()
	x.add("index/a", []pack.Entry{{ID: blob, Type: pack.DataBlob, Pack: p1}})
	x.add("index/b", []pack.Entry{{ID: blob, Type: pack.DataBlob, Pack: p2}, {ID: blob, Type: pack.DataBlob, Pack: p2}})
	for _, tt := range []struct {
		name      string
		condemned []chunk.ID
		wantPack  chunk.ID
		wantHas   bool
	}{
		{"none", nil, p1, true},
		{"first", []chunk.ID{p1}, p2, true},
		{"second", []chunk.ID{p2}, p1, true},
		{"both", []chunk.ID{p1, p2}, p1, false},
	} {
		c := make(map[chunk.ID]bool)
		for _, p := range tt.condemned {
			c[p] = true
		}
		x.setGC(1, c)
		e, ok := x.lookup(blob)
		if !ok || e.Pack != tt.wantPack || x.has(blob) != tt.wantHas {
			t.Errorf("%s: lookup %s %v, has %v; want %s, has %v", tt.name, e.Pack.Str(), ok, x.has(blob), tt.wantPack.Str(), tt.wantHas)
		}
	}
	if n := len(x.locations(blob)); n != 2 {
		t.Errorf("%d locations, want 2", n)
	}
}

// TestGCStaleIndex: a long-lived process whose index still lists packs gc
// has since deleted (it loaded the index between gc's deleting write and
// its fold) must not deduplicate against them once gc drops their
// tombstone: the generation changes, and its next backup reloads the
// index.
func TestGCStaleIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	r := newGCRepo(t, st)
	src := gcSource(t, 3)
	if _, err := r.Backup(ctx, src, BackupOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r.idx.mu.RLock()
	var stale []pack.Entry
	for _, e := range r.idx.blobs {
		stale = append(stale, e)
	}
	r.idx.mu.RUnlock()
	clock.advance(time.Hour)
	runGC(t, r, GCOptions{}) // condemns
	if rep := runGC(t, r, GCOptions{}); rep.PacksDeleted == 0 {
		t.Fatal("second gc deleted nothing")
	}
	w, err := Open(ctx, st, Options{LeaseTTL: testLeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	w.idx.add("index/stale", stale) // as if read before the fold
	runGC(t, r, GCOptions{})        // drops the deleted set
	h, err := w.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restoresLike(t, r, h.ID, src)
	verifyClean(t, r)
}

// TestLeaseLapse: a writer whose lease went unrenewed (by the store's
// clock) for longer than its TTL commits nothing.
func TestLeaseLapse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		gap    time.Duration
		lapsed bool
	}{{testLeaseTTL / 2, false}, {testLeaseTTL, true}} {
		ctx := context.Background()
		clock := newTestClock()
		st := mem.NewWithClock(clock.now)
		r := newGCRepo(t, st)
		r.beforeCommit = func() { clock.advance(tt.gap) }
		_, err := r.Backup(ctx, gcSource(t, 0), BackupOptions{})
		if got := errors.Is(err, ErrLeaseLapsed); got != tt.lapsed {
			t.Errorf("gap %v: %v; want lapsed %v", tt.gap, err, tt.lapsed)
		}
		hs, _ := r.Snapshots(ctx, ListOptions{})
		if n := len(hs); (n == 0) != tt.lapsed {
			t.Errorf("gap %v: %d snapshots committed", tt.gap, n)
		}
		if names := objectNames(t, st); len(names) > 0 {
			for name := range names {
				if strings.HasPrefix(name, leasePrefix) {
					t.Errorf("gap %v: lease %s left behind", tt.gap, name)
				}
			}
		}
	}
}

// hookStore calls onLoad before each Load.
type hookStore struct {
	store.Store
	onLoad func(name string)
}

func (s hookStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	s.onLoad(name)
	return s.Store.Load(ctx, name, offset, length, fn)
}

// TestGCRestoreLease: packs a running restore reads are not deleted under
// it, even when gc repacks them (condemning the old packs) and runs again
// while the restore is still fetching.
func TestGCRestoreLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	base := mem.NewWithClock(clock.now)
	r := newGCRepo(t, base)
	h, src := backupRepackable(t, r)
	clock.advance(time.Hour)
	var (
		once sync.Once
		reps []GCReport
	)
	st := hookStore{Store: base, onLoad: func(name string) {
		if !strings.HasPrefix(name, packPrefix) {
			return
		}
		once.Do(func() {
			g, err := Open(ctx, base, Options{LeaseTTL: testLeaseTTL})
			if err != nil {
				t.Error(err)
				return
			}
			for range 2 {
				rep, err := g.GC(ctx, GCOptions{RepackThreshold: 1})
				if err != nil {
					t.Error(err)
				}
				reps = append(reps, rep)
			}
		})
	}}
	reader, err := Open(ctx, st, Options{LeaseTTL: testLeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	restoresLike(t, reader, h.ID, src)
	if len(reps) != 2 || reps[0].PacksRepacked == 0 || reps[1].PacksDeleted != 0 || reps[1].PacksWaiting == 0 {
		t.Errorf("gc runs during the restore: %+v; want a repack, then nothing deleted while the restore's lease lives", reps)
	}
	if rep := runGC(t, r, GCOptions{RepackThreshold: 1}); rep.PacksDeleted == 0 {
		t.Errorf("gc after the restore deleted nothing")
	}
	restoresLike(t, r, h.ID, src)
	verifyClean(t, r)
}

// TestIndexLoadVanished: an index delta that gc folds away between the
// listing and its read is found again in the folded delta.
func TestIndexLoadVanished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := mem.New()
	entry := func(s string) pack.Entry {
		return pack.Entry{ID: chunk.Hash([]byte(s)), Type: pack.DataBlob, Pack: chunk.Hash([]byte("pack " + s)),
			Frame: pack.Frame{Length: 10, RawLength: 10}, Length: 1}
	}
	save := func(es ...pack.Entry) string {
		data, err := pack.EncodeIndex(es)
		if err != nil {
			t.Fatal(err)
		}
		name := indexPrefix + chunk.Hash(data).String()
		if err := base.Save(ctx, name, data, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	a, b := entry("a"), entry("b")
	na, nb := save(a), save(b)
	var once sync.Once
	st := hookStore{Store: base, onLoad: func(name string) {
		once.Do(func() { // gc folds both while the first is being read
			save(a, b)
			base.Remove(ctx, na)
			base.Remove(ctx, nb)
		})
	}}
	x := newIndex()
	if err := x.load(ctx, st, t.Logf); err != nil {
		t.Fatal(err)
	}
	for _, e := range []pack.Entry{a, b} {
		if got, ok := x.lookup(e.ID); !ok || got.Pack != e.Pack {
			t.Errorf("blob %s: %v %v; want it in pack %s", e.ID.Str(), got.Pack.Str(), ok, e.Pack.Str())
		}
	}
}
