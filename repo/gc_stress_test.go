package repo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/retry"
)

// TestGCStress runs writers (each in its own Repository, as separate
// processes would) that back up changing directories, some with short
// TTLs, while gc runs in a loop and the store's clock moves on, with
// faults injected under a retrying store. Whatever failed, every snapshot
// whose backup succeeded and that has not expired restores afterwards,
// and verify is clean.
func TestGCStress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		rate float64
	}{{"clean", 0}, {"faults", 0.02}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newTestClock()
			base := mem.NewWithClock(clock.now)
			var st store.Store = base
			if tt.rate > 0 {
				st = retry.New(faulty.New(base, faulty.Options{Rate: tt.rate, Seed: 3}), retry.Options{
					MaxAttempts: 8,
					Sleep:       func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
				})
			}
			newGCRepo(t, base)
			open := func() *Repository {
				for {
					r, err := Open(ctx, st, Options{Workers: 2, LeaseTTL: testLeaseTTL})
					if err == nil {
						return r
					}
					if tt.rate == 0 {
						t.Fatal(err)
					}
				}
			}

			type committed struct {
				h     Handle
				files map[string][]byte
			}
			var (
				mu   sync.Mutex
				done []committed
			)
			const writers, rounds = 3, 5
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var gcErrs, gcRuns int
			var gcWG sync.WaitGroup
			gcWG.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					// Far below the lease TTL: a writer lapses (and commits
					// nothing) only if it runs for hundreds of gc loops.
					clock.advance(time.Second / 5)
					rep, err := open().GC(ctx, GCOptions{})
					gcRuns++
					if err != nil {
						gcErrs++
						if tt.rate == 0 && !errors.Is(err, ErrConcurrentGC) {
							t.Errorf("gc: %v", err)
						}
						continue
					}
					_ = rep
				}
			})
			for w := range writers {
				wg.Go(func() {
					src := gcSource(t, w)
					for i := range rounds {
						writeTree(t, src, randFiles(uint64(1000*w+i), fmt.Sprintf("r%d", i), 1, 8<<10))
						opts := BackupOptions{}
						if i%2 == 0 {
							opts.TTL = 3 * time.Second
						}
						h, err := open().Backup(ctx, src, opts)
						if err != nil {
							if tt.rate == 0 && !errors.Is(err, ErrLeaseLapsed) {
								t.Errorf("writer %d round %d: %v", w, i, err)
							}
							continue
						}
						mu.Lock()
						done = append(done, committed{h, readFiles(t, src)})
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(stop)
			gcWG.Wait()
			t.Logf("%d snapshots committed, %d gc runs, %d failed", len(done), gcRuns, gcErrs)
			if len(done) == 0 {
				t.Fatal("no backup succeeded")
			}

			// Check through the fault-free store.
			r, err := Open(ctx, base, Options{LeaseTTL: testLeaseTTL})
			if err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				now := clock.now()
				for _, c := range done {
					if c.h.Expires != nil && !now.Before(*c.h.Expires) {
						continue
					}
					dst := filepath.Join(t.TempDir(), "dst")
					if _, err := r.Restore(ctx, c.h.ID, dst, RestoreOptions{}); err != nil {
						t.Fatalf("%s: restore %s: %v", when, c.h.ID.Str(), err)
					}
					got := readFiles(t, dst)
					for k, v := range c.files {
						if string(got[k]) != string(v) {
							t.Fatalf("%s: restore %s: %s differs", when, c.h.ID.Str(), k)
						}
					}
				}
				verifyClean(t, r)
			}
			check("after the run")
			clock.advance(time.Hour)
			runGC(t, r, GCOptions{})
			runGC(t, r, GCOptions{})
			check("after two more gcs")
			var live []chunk.ID
			for _, c := range done {
				if c.h.Expires == nil {
					live = append(live, c.h.ID)
				}
			}
			hs, err := r.Snapshots(ctx, ListOptions{AllExpired: true})
			if err != nil || len(hs) < len(live) {
				t.Errorf("%d snapshots left (%v); want at least the %d without TTL", len(hs), err, len(live))
			}
		})
	}
}

// TestGCRecovers: a gc that dies between its steps leaves a state the
// next run completes, and never loses a live snapshot.
func TestGCRecovers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		run  int           // the gc run (1-based) that fails
		m    faulty.Method // on its nth call of m on names with prefix
		pref string
		nth  int
		kind faulty.Kind
	}{
		// gc/state writes of a first run: claim, before the fold, condemn, seal.
		{"before fold", 1, faulty.Save, gcStateName, 2, faulty.FailBefore},
		{"before condemn", 1, faulty.Save, gcStateName, 3, faulty.FailBefore},
		{"before seal", 1, faulty.Save, gcStateName, 4, faulty.FailBefore},
		{"seal lost", 1, faulty.Save, gcStateName, 4, faulty.FailAfter},
		{"while folding", 1, faulty.Save, indexPrefix, 1, faulty.FailBefore},
		{"while repacking", 1, faulty.Save, packPrefix, 1, faulty.FailBefore},
		{"before the repack's delta", 1, faulty.Save, indexPrefix, 2, faulty.FailBefore},
		{"after deleting state", 2, faulty.Save, indexPrefix, 1, faulty.FailBefore},
		{"while removing deltas", 2, faulty.Remove, indexPrefix, 1, faulty.FailBefore},
		{"while deleting packs", 2, faulty.Remove, packPrefix, 2, faulty.FailBefore},
		{"after deleting packs", 2, faulty.Save, gcStateName, 3, faulty.FailBefore},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newTestClock()
			base := mem.NewWithClock(clock.now)
			var (
				mu    sync.Mutex
				armed bool
				calls int
				fired bool
			)
			st := faulty.New(base, faulty.Options{Inject: func(m faulty.Method, name string) faulty.Kind {
				mu.Lock()
				defer mu.Unlock()
				if !armed || fired || m != tt.m || !strings.HasPrefix(name, tt.pref) {
					return faulty.None
				}
				if calls++; calls == tt.nth {
					fired = true
					return tt.kind
				}
				return faulty.None
			}})
			r := newGCRepo(t, st)
			h, src := backupRepackable(t, r)
			for i := range 3 {
				if _, err := r.Backup(ctx, gcSource(t, i+2), BackupOptions{TTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
			clock.advance(time.Hour)
			for run := 1; run <= 4; run++ {
				mu.Lock()
				armed, calls = run == tt.run, 0
				mu.Unlock()
				rep, err := r.GC(ctx, GCOptions{RepackThreshold: 1})
				t.Logf("run %d: %+v", run, rep)
				if run == tt.run {
					t.Logf("run %d with a fault: %v", run, err)
					if fired && err == nil && tt.kind == faulty.FailBefore {
						t.Errorf("run %d: the injected fault went unnoticed", run)
					}
				} else if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				// Packs a failed run uploaded but never indexed (a repack
				// cut before its delta) are orphans, condemned once older
				// than the lease TTL: let that pass between runs, as it
				// does between daily gcs.
				clock.advance(2 * testLeaseTTL)
			}
			if !fired {
				t.Fatalf("fault never injected")
			}
			rep := runGC(t, r, GCOptions{RepackThreshold: 1})
			if rep.PacksCondemned != 0 || rep.PacksDeleted != 0 || rep.PacksWaiting != 0 {
				t.Errorf("gc after recovery still had work: %+v", rep)
			}
			fresh := newGCRepo(t, mem.New())
			if _, err := fresh.Backup(ctx, src, BackupOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, want := objectBytes(t, base, packPrefix), objectBytes(t, fresh.Store(), packPrefix); got > want+want/20+16<<10 {
				t.Errorf("packs hold %d bytes; the live snapshot alone needs %d", got, want)
			}
			r2, err := Open(ctx, base, Options{})
			if err != nil {
				t.Fatal(err)
			}
			restoresLike(t, r2, h.ID, src)
			verifyClean(t, r2)
		})
	}
}
