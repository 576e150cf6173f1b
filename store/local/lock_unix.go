//go:build unix

package local

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes the store's lock file, exclusively or shared, and returns the
// function that releases it. Each call opens the file anew: flock locks
// belong to an open file description, so goroutines of one process exclude
// each other just as processes do.
func (s *Store) lock(exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// inode returns the file's inode number.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
