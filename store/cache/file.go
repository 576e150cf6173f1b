package cache

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// headerSize is the length of a cached file's header: magic, then the
	// object's length (see the package comment).
	headerSize = 16
	magic      = "sncache\x01"
	// tmpPrefix starts the names of files being written; scans skip them.
	tmpPrefix = ".tmp-"
	// staleTemp is the age after which a scan deletes a temporary file:
	// its writer has surely died.
	staleTemp = time.Hour
)

// errCorrupt marks a cached file whose size disagrees with its header.
var errCorrupt = errors.New("cache: corrupt cached file")

// openCached opens the cached file p and checks its header against its
// size. It returns the open file, its FileInfo and the object's length.
// A corrupt file is deleted.
func (s *Store) openCached(p string) (*os.File, fs.FileInfo, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	var h [headerSize]byte
	_, err = f.ReadAt(h[:], 0)
	n := int64(binary.BigEndian.Uint64(h[8:]))
	if err == nil && (string(h[:8]) != magic || n < 0 || fi.Size()-headerSize != n) {
		err = errCorrupt
	}
	if err != nil {
		f.Close()
		s.opts.Logf("cache: %s: %v (%d bytes); dropping it", p, err, fi.Size())
		s.dropFile(p, fi)
		return nil, nil, 0, err
	}
	return f, fi, n, nil
}

// dropFile deletes p if it is still the file fi describes, not a fresh
// copy that another process has renamed into place since.
func (s *Store) dropFile(p string, fi fs.FileInfo) {
	cur, err := os.Lstat(p)
	if err != nil || !os.SameFile(cur, fi) {
		return
	}
	if err := os.Remove(p); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.opts.Logf("cache: drop %s: %v", p, err)
		}
		return
	}
	s.used.Add(-fi.Size())
}

// put writes data as key's cached copy, replacing any, and then evicts if
// the cache has grown past its bound. The caller holds key's lock. An
// object that does not fit the bound is not written.
func (s *Store) put(key string, data []byte) error {
	size := headerSize + int64(len(data))
	if size > s.opts.MaxBytes {
		s.drop(key)
		return nil
	}
	tmp, err := s.writeTemp(data)
	if err != nil {
		return err
	}
	return s.install(key, tmp, int64(len(data)))
}

// install renames the complete temporary file tmp, holding an object of n
// bytes, into place as key's cached copy, counts it and evicts if needed.
// The caller holds key's lock.
func (s *Store) install(key, tmp string, n int64) error {
	p := s.objectPath(key)
	size := headerSize + n
	if old, err := os.Lstat(p); err == nil {
		s.used.Add(-old.Size())
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	// Stamped after the rename: a scan judges temporary files by their
	// mtime, which must stay the real clock's.
	now := s.opts.Now()
	_ = os.Chtimes(p, now, now) // best effort: it may be evicted already
	s.used.Add(size)
	s.sinceScan.Add(size)
	s.fills.Add(1)
	s.bytesFilled.Add(n)
	s.maybeEvict(p)
	return nil
}

// writeTemp writes the header and data to a new temporary file in
// objects/ and returns its path.
func (s *Store) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, objectsDir), tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	var h [headerSize]byte
	putHeader(h[:], int64(len(data)))
	_, err = f.Write(h[:])
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// putHeader writes the header of a cached file holding n bytes into h.
func putHeader(h []byte, n int64) {
	copy(h, magic)
	binary.BigEndian.PutUint64(h[8:], uint64(n))
}

// maybeEvict scans and evicts when the estimate passes the bound or when
// this Store has filled a tenth of the bound since its last scan. One
// goroutine at a time does it; the others go on.
func (s *Store) maybeEvict(keep string) {
	if s.used.Load() <= s.opts.MaxBytes && s.sinceScan.Load() <= s.opts.MaxBytes/10 {
		return
	}
	if !s.evictMu.TryLock() {
		return
	}
	defer s.evictMu.Unlock()
	s.sinceScan.Store(0)
	total, err := s.evictLocked(keep)
	if err != nil {
		s.opts.Logf("cache: evict in %s: %v", s.dir, err)
		return
	}
	s.used.Store(total)
}

// evict scans the folder and, if its files hold more than MaxBytes,
// deletes the least recently used ones but keep until they hold at most
// 90% of MaxBytes. It returns the bytes left.
func (s *Store) evict(keep string) (int64, error) {
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	return s.evictLocked(keep)
}

// cachedFile is one file found by a scan.
type cachedFile struct {
	path  string
	size  int64
	mtime time.Time
}

func (s *Store) evictLocked(keep string) (int64, error) {
	files, total, err := s.scan()
	if err != nil || total <= s.opts.MaxBytes {
		return total, err
	}
	target := s.opts.MaxBytes / 10 * 9
	slices.SortFunc(files, func(a, b cachedFile) int {
		return cmp.Or(a.mtime.Compare(b.mtime), strings.Compare(a.path, b.path))
	})
	for _, f := range files {
		if total <= target {
			break
		}
		if f.path == keep {
			continue
		}
		err := os.Remove(f.path)
		switch {
		case err == nil:
			s.evictions.Add(1)
			total -= f.size
		case errors.Is(err, fs.ErrNotExist):
			total -= f.size // another process evicted it
		default:
			s.opts.Logf("cache: evict %s: %v", f.path, err)
		}
	}
	return total, nil
}

// scan lists the cached files and their total size, deleting temporary
// files left by a crash.
func (s *Store) scan() ([]cachedFile, int64, error) {
	dir := filepath.Join(s.dir, objectsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []cachedFile
	var total int64
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, 0, fmt.Errorf("scan %s: %w", e.Name(), err)
		}
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if time.Since(fi.ModTime()) > staleTemp {
				_ = os.Remove(p) // best effort; the next scan tries again
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, cachedFile{path: p, size: fi.Size(), mtime: fi.ModTime()})
		total += fi.Size()
	}
	return files, total, nil
}
