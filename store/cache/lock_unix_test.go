//go:build unix

package cache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
)

// TestLockWaitCancellable: while another process holds an object's lock
// (here the test itself, by flock on the documented lock file), a Load
// that must fill waits, and its context ends the wait; once the lock is
// free a Load fills.
func TestLockWaitCancellable(t *testing.T) {
	f := newFixture(t, cache.Options{})
	f.seed(t, map[string][]byte{"packs/l": []byte("locked")})
	key := filepath.Base(cachedPath(f.dir, "packs/l"))
	lf, err := os.OpenFile(filepath.Join(f.dir, "locks", key[:3]), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := store.LoadAll(ctx, f.c, "packs/l", 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load while the lock is held elsewhere: error = %v, want context.DeadlineExceeded", err)
	}
	if got := f.inner.Stats().Gets; got != 0 {
		t.Errorf("%d inner Loads while the lock was held, want 0", got)
	}
	lf.Close() // releases the lock
	if b, err := store.LoadAll(t.Context(), f.c, "packs/l", 0, 0); err != nil || string(b) != "locked" {
		t.Errorf("Load after the lock was released = %q, %v", b, err)
	}
}
