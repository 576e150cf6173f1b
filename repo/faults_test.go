package repo

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/retry"
)

// TestBackupRestoreThroughFaults backs up and restores through a store
// that fails 5% of its calls (errors before or after the call took
// effect, delays, reads cut short), under the retry wrapper as remote
// stores are opened. Every backup either fails or commits a snapshot that
// restores identically; every restore either fails or is identical; and
// the repository behind the faults verifies clean.
func TestBackupRestoreThroughFaults(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, textFiles(7, 120))
	noSleep := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	base := mem.New()
	// Small packs, so that each round makes enough calls to be hit.
	if _, err := Init(ctx, base, InitOptions{DataPackSize: 1 << 20, TreePackSize: 64 << 10}, Options{}); err != nil {
		t.Fatal(err)
	}
	committed, failed := 0, 0
	var total faulty.Counts
	for seed := uint64(1); seed <= 16; seed++ {
		fs := faulty.New(base, faulty.Options{Rate: 0.05, Seed: seed})
		st := retry.New(fs, retry.Options{MaxAttempts: 4, Sleep: noSleep})
		r, err := Open(ctx, st, Options{})
		if err != nil {
			failed++
			t.Logf("seed %d: open failed cleanly: %v", seed, err)
			continue
		}
		h, err := r.Backup(ctx, src, BackupOptions{Name: "faults"})
		if err != nil {
			failed++
			t.Logf("seed %d: backup failed cleanly: %v", seed, err)
			continue
		}
		committed++
		dst := filepath.Join(t.TempDir(), "dst")
		if _, err := r.Restore(ctx, h.ID, dst, RestoreOptions{}); err != nil {
			t.Logf("seed %d: restore failed cleanly: %v", seed, err)
		} else if diffs, err := fstree.CompareWith(src, dst, fstree.Options{IgnoreRootMeta: true}); err != nil || len(diffs) > 0 {
			t.Errorf("seed %d: restore through faults differs: %v %q", seed, err, diffs)
		}
		// Without faults, the committed snapshot restores identically.
		clean, err := Open(ctx, base, Options{})
		if err != nil {
			t.Fatal(err)
		}
		dst2 := filepath.Join(t.TempDir(), "clean")
		if _, err := clean.Restore(ctx, h.ID, dst2, RestoreOptions{}); err != nil {
			t.Fatalf("seed %d: committed snapshot %s does not restore: %v", seed, h.ID.Str(), err)
		}
		if diffs, err := fstree.CompareWith(src, dst2, fstree.Options{IgnoreRootMeta: true}); err != nil || len(diffs) > 0 {
			t.Errorf("seed %d: committed snapshot differs: %v %q", seed, err, diffs)
		}
		n := fs.Injected()
		total.FailBefore += n.FailBefore
		total.FailAfter += n.FailAfter
		total.TruncateRead += n.TruncateRead
		total.Delay += n.Delay
	}
	// Reads cut short hit only Loads, which a backup makes few of:
	// restore the last snapshot through a store that cuts 20% of them.
	last, err := Open(ctx, base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := last.Snapshots(ctx, ListOptions{})
	if err != nil || len(hs) == 0 {
		t.Fatalf("snapshots: %v, %d", err, len(hs))
	}
	for seed := uint64(100); seed < 106; seed++ {
		fs := faulty.New(base, faulty.Options{Rate: 0.2, Seed: seed, Methods: []faulty.Method{faulty.Load}, Kinds: []faulty.Kind{faulty.TruncateRead}})
		r, err := Open(ctx, retry.New(fs, retry.Options{MaxAttempts: 6, Sleep: noSleep}), Options{})
		if err != nil {
			t.Logf("seed %d: open failed cleanly: %v", seed, err)
			continue
		}
		dst := filepath.Join(t.TempDir(), "cut")
		if _, err := r.Restore(ctx, hs[0].ID, dst, RestoreOptions{}); err != nil {
			t.Logf("seed %d: restore failed cleanly: %v", seed, err)
		} else if diffs, err := fstree.CompareWith(src, dst, fstree.Options{IgnoreRootMeta: true}); err != nil || len(diffs) > 0 {
			t.Errorf("seed %d: restore through cut reads differs: %v %q", seed, err, diffs)
		}
		total.TruncateRead += fs.Injected().TruncateRead
	}
	t.Logf("faults injected: %+v", total)
	if total.FailBefore == 0 || total.FailAfter == 0 || total.TruncateRead == 0 {
		t.Errorf("some kinds of fault were never injected (%+v): the test proves less than it claims", total)
	}
	if committed == 0 {
		t.Fatalf("no backup got through 5%% faults with retries (%d failed)", failed)
	}
	r, err := Open(ctx, base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("verify after faulty backups: %v", rep.Problems)
	}
	t.Logf("%d backups committed, %d failed cleanly", committed, failed)
}

func TestOpenRefusesNewerVersion(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	r, err := Init(ctx, st, InitOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	cfg.Version = FormatVersion + 1
	data, _ := json.Marshal(cfg)
	if err := st.Save(ctx, configName, data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, st, Options{}); !errors.Is(err, ErrVersion) {
		t.Errorf("Open of a version %d repository = %v; want ErrVersion", cfg.Version, err)
	}
	if _, err := Open(ctx, mem.New(), Options{}); !errors.Is(err, ErrNoRepository) {
		t.Errorf("Open of an empty store = %v; want ErrNoRepository", err)
	}
	if err := st.Save(ctx, configName, []byte("not json"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, st, Options{}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Open with a garbage config = %v; want ErrBadConfig", err)
	}
}

func TestListingMarksExpiredByStoreClock(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	st := mem.NewWithClock(clock.now)
	// The host's clock is a year behind the store's: only the store's
	// counts.
	r, err := Init(ctx, st, InitOptions{}, Options{Now: func() time.Time { return clock.now().AddDate(-1, 0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a": []byte("a")})
	h, err := r.Backup(ctx, src, BackupOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	live, err := r.Handle(ctx, h.ID)
	if err != nil || live.Expired {
		t.Fatalf("fresh snapshot: expired %v, %v", live.Expired, err)
	}
	clock.advance(2 * time.Hour)
	if hs, _ := r.Snapshots(ctx, ListOptions{}); len(hs) != 0 {
		t.Errorf("ls lists %d snapshots after expiry; want none", len(hs))
	}
	hs, err := r.Snapshots(ctx, ListOptions{AllExpired: true})
	if err != nil || len(hs) != 1 || !hs[0].Expired {
		t.Errorf("ls --all = %+v, %v; want the snapshot marked expired", hs, err)
	}
	if got, err := r.Handle(ctx, h.ID); err != nil || !got.Expired {
		t.Errorf("Handle after expiry: expired %v, %v; want true", got.Expired, err)
	}
}
