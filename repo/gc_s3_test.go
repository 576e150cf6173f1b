package repo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/location"
	"github.com/sandsnap/sandsnap/store/retry"
)

// gcStressRounds is how many rounds TestGCStressS3 runs; raise it to run
// the model longer than CI does:
//
//	bash scripts/test.sh ./repo -- -run TestGCStressS3 -v -args -gcstress.rounds=20
var gcStressRounds = flag.Int("gcstress.rounds", 3, "rounds of TestGCStressS3")

// s3LeaseTTL is the lease TTL of TestGCStressS3: the S3 server's clock is
// real time, so it is short, but well above S3's one-second stamps.
const s3LeaseTTL = 3 * time.Second

// TestGCStressS3 is a model-based stress test over the real S3 server:
// writers, each its own Repository with its own skewed host clock (host
// time must not matter), fork one base snapshot, edit their fork at
// random and back it up with the previous snapshot as parent and a random
// TTL, all at once and while gc runs, with faults injected under a
// retrying store. After each round, once the leases have aged past their
// TTL and gc ran again, every committed snapshot that has not expired
// restores byte-identical to the tree its writer backed up, and verify is
// clean. Backups and gc runs that fail (because of the faults) must fail
// cleanly: nothing committed may be broken.
func TestGCStressS3(t *testing.T) {
	endpoint := os.Getenv("SANDSNAP_TEST_S3_ENDPOINT")
	bucket := os.Getenv("SANDSNAP_TEST_S3_BUCKET")
	if endpoint == "" || bucket == "" {
		t.Skip("SANDSNAP_TEST_S3_ENDPOINT or SANDSNAP_TEST_S3_BUCKET not set: run scripts/test.sh to start the S3 server")
	}
	// Mostly sleeps past lease TTLs: let other tests run meanwhile. A
	// slow writer whose lease lapses fails cleanly, which is allowed.
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+time.Duration(*gcStressRounds)*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(format string, args ...any) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	var suffix [8]byte
	crand.Read(suffix[:])
	raw, err := location.Create(ctx, "s3://"+bucket+"/gcstress-"+hex.EncodeToString(suffix[:]), location.Options{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, raw) })
	faults := faulty.New(raw, faulty.Options{Rate: 0.02, Seed: 5})
	st := retry.New(faults, retry.Options{
		MaxAttempts: 8,
		Sleep:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})

	// clean sees the store without faults; it makes the base snapshot and
	// checks every round.
	clean, err := Init(ctx, raw, InitOptions{DataPackSize: 1 << 20, TreePackSize: 64 << 10},
		Options{Workers: 2, LeaseTTL: s3LeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	// open opens a Repository over the faulty store, as a new process on
	// a host whose clock is off by skew would.
	open := func(skew time.Duration) (*Repository, error) {
		var err error
		for range 5 {
			var r *Repository
			r, err = Open(ctx, st, Options{Workers: 2, LeaseTTL: s3LeaseTTL, Now: func() time.Time { return time.Now().Add(skew) }})
			if err == nil {
				return r, nil
			}
		}
		return nil, err
	}

	tmp := t.TempDir()
	baseDir := filepath.Join(tmp, "base")
	rng := rand.New(rand.NewPCG(42, 1))
	for d := range 3 {
		for f := range 8 {
			writeFileAt(t, filepath.Join(baseDir, fmt.Sprintf("d%d", d), fmt.Sprintf("f%d", f)), randBytes(rng, 1<<10+rng.IntN(4<<10)), 0)
		}
	}
	base, err := clean.Backup(ctx, baseDir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// committed is a snapshot whose backup succeeded and a copy of the
	// tree it was made of.
	type committed struct {
		h    Handle
		tree string
	}
	done := []committed{{base, baseDir}}
	const writers = 3
	skews := [writers]time.Duration{-time.Hour, 0, time.Hour}
	ttls := []time.Duration{0, 2 * time.Second, time.Hour}
	dirs := make([]string, writers)
	// parents[w] is writer w's last snapshot that does not expire soon
	// (at first the base).
	parents := make([]chunk.ID, writers)
	for w := range writers {
		dirs[w] = filepath.Join(tmp, fmt.Sprintf("w%d", w))
		if _, err := clean.Restore(ctx, base.ID, dirs[w], RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		parents[w] = base.ID
	}
	phase("base backed up and restored into %d forks", writers)

	var backupErrs, gcErrs, gcRuns int
	stamp := int64(0) // makes every edited file's mtime unique
	for round := range *gcStressRounds {
		// Edit every fork (sequentially: the edits are the model's input).
		for w := range writers {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(round)))
			editTree(t, rng, dirs[w], round, &stamp)
		}

		var (
			mu  sync.Mutex
			wg  sync.WaitGroup
			now []committed
		)
		for w := range writers {
			wg.Go(func() {
				ttl := ttls[rand.New(rand.NewPCG(uint64(w)+100, uint64(round))).IntN(len(ttls))]
				r, err := open(skews[w])
				var h Handle
				if err == nil {
					h, err = r.Backup(ctx, dirs[w], BackupOptions{Parent: parents[w], TTL: ttl})
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Logf("round %d writer %d: backup failed: %v", round, w, err)
					backupErrs++
					return
				}
				copyDir := filepath.Join(tmp, fmt.Sprintf("r%d-w%d", round, w))
				if out, err := exec.CommandContext(ctx, "cp", "-a", dirs[w], copyDir).CombinedOutput(); err != nil {
					t.Errorf("cp -a: %v\n%s", err, out)
					return
				}
				// A snapshot that expires soon makes a poor parent: the
				// next backup would fail when gc has removed it.
				if h.Expires == nil || h.Expires.Sub(time.Now()) > 10*time.Minute {
					parents[w] = h.ID
				}
				now = append(now, committed{h, copyDir})
			})
		}
		gcs := 1 + round%2
		for g := range gcs {
			wg.Go(func() {
				r, err := open(skews[(round+g)%writers])
				if err == nil {
					_, err = r.GC(ctx, GCOptions{RepackThreshold: 0.9})
				}
				mu.Lock()
				defer mu.Unlock()
				gcRuns++
				if err != nil {
					gcErrs++
					t.Logf("round %d gc %d: %v", round, g, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		done = append(done, now...)
		phase("round %d: %d backups committed, %d gc runs", round, len(now), gcs)

		// Past the lease TTL (plus S3's one-second stamps), the leases of
		// this round's writers are dead and gc may delete what they
		// protected; run gc through the faults, then once cleanly.
		time.Sleep(s3LeaseTTL + 2*time.Second)
		if r, err := open(skews[round%writers]); err == nil {
			if _, err := r.GC(ctx, GCOptions{RepackThreshold: 0.9}); err != nil {
				gcErrs++
				t.Logf("round %d: gc after the writers: %v", round, err)
			}
			gcRuns++
		}
		cleanGC(t, ctx, clean)
		gcRuns++

		checked := 0
		for _, c := range done {
			// A snapshot that expires (or is about to) may be gone.
			if c.h.Expires != nil && !time.Now().Add(10*time.Second).Before(*c.h.Expires) {
				continue
			}
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := clean.Restore(ctx, c.h.ID, dst, RestoreOptions{}); err != nil {
				t.Fatalf("round %d: restore %s: %v", round, c.h.ID.Str(), err)
			}
			diffs, err := fstree.CompareWith(c.tree, dst, fstree.Options{IgnoreRootMeta: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Errorf("round %d: restore %s differs from its tree: %s", round, c.h.ID.Str(), d)
			}
			os.RemoveAll(dst)
			checked++
		}
		verifyClean(t, clean)
		if t.Failed() {
			t.FailNow()
		}
		phase("round %d: %d live snapshots restore, verify clean", round, checked)
	}
	t.Logf("%d snapshots committed, %d backups failed, %d gc runs (%d failed), faults %+v",
		len(done), backupErrs, gcRuns, gcErrs, faults.Injected())
}

// cleanGC runs gc on r; a gc left half-done by a failed run may hold the
// claim until its lease dies, so ErrConcurrentGC is waited out.
func cleanGC(t *testing.T, ctx context.Context, r *Repository) {
	t.Helper()
	for i := 0; ; i++ {
		rep, err := r.GC(ctx, GCOptions{RepackThreshold: 0.9})
		if err == nil {
			t.Logf("gc: %+v", rep)
			return
		}
		if !errors.Is(err, ErrConcurrentGC) || i == 5 {
			t.Fatalf("gc: %v", err)
		}
		time.Sleep(s3LeaseTTL + 2*time.Second)
	}
}

// editTree changes some files of dir, removes some and adds some; every
// file it writes gets a new, unique mtime so that a backup with a parent
// cannot take it for unchanged.
func editTree(t *testing.T, rng *rand.Rand, dir string, round int, stamp *int64) {
	t.Helper()
	files := readFiles(t, dir)
	for name := range files {
		switch rng.IntN(6) {
		case 0:
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		case 1, 2:
			*stamp++
			writeFileAt(t, filepath.Join(dir, name), randBytes(rng, 1<<10+rng.IntN(4<<10)), *stamp)
		}
	}
	for i := range 1 + rng.IntN(4) {
		*stamp++
		name := filepath.Join(fmt.Sprintf("d%d", rng.IntN(4)), fmt.Sprintf("new-r%d-%d", round, i))
		writeFileAt(t, filepath.Join(dir, name), randBytes(rng, rng.IntN(6<<10)), *stamp)
	}
}

// writeFileAt writes path (making its folder); a stamp above 0 sets its
// mtime to that many seconds past a fixed time.
func writeFileAt(t *testing.T, path string, data []byte, stamp int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if stamp > 0 {
		mt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).Add(time.Duration(stamp) * time.Second)
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// removeAll removes every object of st.
func removeAll(t *testing.T, st store.Store) {
	ctx := context.Background()
	var names []string
	if err := st.List(ctx, "", func(fi store.Info) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, n := range names {
		if err := st.Remove(ctx, n); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}
