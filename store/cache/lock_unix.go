//go:build unix

package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxLockWait caps the pause between two tries of a held lock.
const maxLockWait = 25 * time.Millisecond

// lock takes the exclusive lock of key's lock file and returns the function
// that releases it. Each call opens the file anew: flock locks belong to an
// open file description, so goroutines of one process exclude each other
// just as processes do. It polls with LOCK_NB rather than blocking, so
// that a done context stops the wait.
func (s *Store) lock(ctx context.Context, key string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, locksDir, key[:lockDigits]), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxLockWait)
	}
}
