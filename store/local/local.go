package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

const (
	reserved   = ".sandsnap-" // prefix of the store's own files
	tmpPattern = reserved + "tmp-*"
	lockName   = reserved + "lock"
)

// Store is a store.Store in a local directory. It is safe for concurrent
// use by many goroutines and many processes.
type Store struct {
	dir string

	// procLock stands in for flock on systems without it (lock_other.go);
	// it excludes only this Store's goroutines there.
	procLock sync.RWMutex
}

var _ store.Store = (*Store)(nil)

// Open returns the Store in dir, which must exist; a missing dir is an
// error wrapping store.ErrNotFound.
func Open(dir string) (*Store, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local: open %s: %w", dir, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local: open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local: open %s: not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: open %s: %w", dir, err)
	}
	return &Store{dir: abs}, nil
}

// Create makes dir (and its parents) if needed and returns the Store in it.
func Create(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local: create %s: %w", dir, err)
	}
	return Open(dir)
}

// Dir returns the store's directory as an absolute path.
func (s *Store) Dir() string { return s.dir }

// checkName reports whether name is a valid object name for this store.
func checkName(op, name string) error {
	bad := name == "" || strings.IndexByte(name, 0) >= 0
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.HasPrefix(elem, reserved) {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("local: %s %q: %w", op, name, store.ErrInvalidName)
	}
	return nil
}

// begin checks the context and the name and returns the object's path.
func (s *Store) begin(ctx context.Context, op, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("local: %s %q: %w", op, name, err)
	}
	if err := checkName(op, name); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(name)), nil
}

// notExist reports whether err means that a path (or one of its parents as
// a directory) does not exist.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Save stores data under name: see the package comment for how it stays
// atomic.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) (err error) {
	p, err := s.begin(ctx, "save", name)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("local: save %q: %w", name, err)
		}
	}()
	tmp, err := s.writeTemp(p, data)
	if err != nil {
		return err
	}
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp) // best effort: List skips strays anyway
		}
	}()
	// The bytes are on disk; a cancellation now still publishes nothing.
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lock(opts.IfMatch != "")
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case opts.IfNoneMatch:
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return store.ErrExists
			}
			return err
		}
	case opts.IfMatch != "":
		fi, err := os.Stat(p)
		if notExist(err) || (err == nil && !fi.Mode().IsRegular()) {
			return fmt.Errorf("if-match %q: %w", opts.IfMatch, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if etag := etagOf(fi); etag != opts.IfMatch {
			return fmt.Errorf("if-match %q (current %q): %w", opts.IfMatch, etag, store.ErrPrecondition)
		}
		fallthrough
	default:
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		tmp = ""
	}
	return syncDir(filepath.Dir(p))
}

// writeTemp writes data to a new temporary file in p's directory, stamped
// with the host clock at nanosecond precision and fsynced, and returns its path.
func (s *Store) writeTemp(p string, data []byte) (string, error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return "", err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		now := time.Now()
		werr = os.Chtimes(f.Name(), now, now)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return "", werr
	}
	return f.Name(), nil
}

// syncDir fsyncs a directory so that a rename or link in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load calls fn with a reader over the requested range of name.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	p, err := s.begin(ctx, "load", name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if notExist(err) {
		return fmt.Errorf("local: load %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("local: load %q: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("local: load %q: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("local: load %q: %w", name, store.ErrNotFound)
	}
	size := fi.Size()
	end := offset + length
	if length == 0 {
		end = size
	}
	if offset < 0 || length < 0 || offset > size || end > size || end < offset {
		return fmt.Errorf("local: load %q [%d, +%d) of %d bytes: %w", name, offset, length, size, store.ErrInvalidRange)
	}
	return fn(io.NewSectionReader(f, offset, end-offset))
}

// etagOf returns the ETag of a file: see the package comment.
func etagOf(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 16) + "-" +
		strconv.FormatInt(fi.ModTime().UnixNano(), 16) + "-" +
		strconv.FormatUint(inode(fi), 16)
}

func infoOf(name string, fi fs.FileInfo) store.Info {
	return store.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etagOf(fi)}
}

// Stat returns name's Info.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	p, err := s.begin(ctx, "stat", name)
	if err != nil {
		return store.Info{}, err
	}
	fi, err := os.Stat(p)
	if notExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return store.Info{}, fmt.Errorf("local: stat %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("local: stat %q: %w", name, err)
	}
	return infoOf(name, fi), nil
}

// List calls fn for each object whose name starts with prefix, in lexical
// order, walking only the directories that can hold such names. An object
// saved or removed during the walk may or may not be listed.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: list %q: %w", prefix, err)
	}
	return s.walk(ctx, "", prefix, fn)
}

// walk lists the directory rel ("" or a name prefix ending in "/").
func (s *Store) walk(ctx context.Context, rel, prefix string, fn func(store.Info) error) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if notExist(err) {
		return nil // removed during the walk, or never created
	}
	if err != nil {
		return fmt.Errorf("local: list %q: %w", prefix, err)
	}
	// A directory's names all start with "dir/", so it sorts as "dir/"
	// among its siblings: "a-b" < "a/x" although "a" < "a-b".
	key := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(key(a), key(b)) })
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), reserved) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("local: list %q: %w", prefix, err)
		}
		full := rel + key(e)
		if e.IsDir() {
			if strings.HasPrefix(full, prefix) || strings.HasPrefix(prefix, full) {
				if err := s.walk(ctx, full, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(full, prefix) {
			continue
		}
		fi, err := e.Info()
		if notExist(err) {
			continue // removed since ReadDir
		}
		if err != nil {
			return fmt.Errorf("local: list %q: %w", path.Join(rel, e.Name()), err)
		}
		if err := fn(infoOf(full, fi)); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes name; a missing name is not an error. Emptied directories
// are left in place: they are few (the pack fan-out) and removing them
// would race with a Save creating a file in them.
func (s *Store) Remove(ctx context.Context, name string) error {
	p, err := s.begin(ctx, "remove", name)
	if err != nil {
		return err
	}
	unlock, err := s.lock(false)
	if err != nil {
		return fmt.Errorf("local: remove %q: %w", name, err)
	}
	defer unlock()
	fi, err := os.Lstat(p)
	if notExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !notExist(err) {
		return fmt.Errorf("local: remove %q: %w", name, err)
	}
	return nil
}
