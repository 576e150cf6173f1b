//go:build !unix

package local

import "io/fs"

// lock stands in for flock where there is none: see Store.procLock.
func (s *Store) lock(exclusive bool) (func(), error) {
	if exclusive {
		s.procLock.Lock()
		return s.procLock.Unlock, nil
	}
	s.procLock.RLock()
	return s.procLock.RUnlock, nil
}

func inode(fs.FileInfo) uint64 { return 0 }
