package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/sandsnap/sandsnap/store"
)

// ErrInvalidKey: DefaultDir got a repository key that is not a single
// path element.
var ErrInvalidKey = errors.New("cache: invalid repository key")

// DefaultMaxBytes is the size bound used when Options.MaxBytes is 0.
const DefaultMaxBytes = 4 << 30

const (
	objectsDir = "objects"
	locksDir   = "locks"
	// lockDigits is how many hex digits of a name's hash pick its lock
	// file: 16^3 = 4096 lock files at most.
	lockDigits = 3
	// touchEvery limits the mtime updates of hits.
	touchEvery = time.Minute
	// fillAttempts bounds how often a Load tries the cache before it
	// reads the inner store directly.
	fillAttempts = 3
)

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// MaxBytes bounds the size of the cached files; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Cacheable reports whether an object is immutable and worth caching;
	// nil means names that start with "packs/" or "index/".
	Cacheable func(name string) bool
	// Verify, if set, checks a whole object fetched from the inner store
	// before it enters the cache; an object that fails is not cached and
	// the Load fails with Verify's error. Bytes given to Save are not
	// verified: the caller made them. Verify needs the whole object in
	// memory, so a fill then reads its file back into memory; prefer
	// VerifyReader.
	Verify func(name string, data []byte) error
	// VerifyReader, if set, is used instead of Verify: it reads the whole
	// fetched object from r (the completed temporary file, read back from
	// the disk), so a fill never holds the object in memory.
	VerifyReader func(name string, r io.Reader) error
	// Logf, if set, reports what the cache repairs or fails to do (a
	// corrupt file dropped, a failed write or eviction).
	Logf func(format string, args ...any)
	// Now stamps the files for least-recently-used eviction; nil means
	// time.Now.
	Now func() time.Time
}

// Stats are the cache's counts since New; see the field comments.
type Stats struct {
	// Hits counts cacheable Loads served from a cached copy without
	// waiting for a fill.
	Hits int64 `json:"hits"`
	// Misses counts the other cacheable Loads: those that filled the
	// object, waited for another goroutine's or process's fill, or read
	// the inner store.
	Misses int64 `json:"misses"`
	// Fills counts the objects this Store wrote into the cache, by a
	// Load's fill or by a Save; BytesFilled sums their lengths.
	Fills       int64 `json:"fills"`
	BytesFilled int64 `json:"bytes_filled"`
	// Evictions counts the files this Store deleted to keep the bound.
	Evictions int64 `json:"evictions"`
	// Healed counts the cached copies dropped by Invalidate because a
	// reader found them corrupt; each is fetched again on its next Load.
	Healed int64 `json:"healed"`
}

// Store is a store.Store that caches the whole cacheable objects of an
// inner store in a local folder; see the package comment. It is safe for
// concurrent use if the inner store is, and several processes may use one
// folder at once.
type Store struct {
	inner store.Store
	dir   string
	opts  Options
	group singleflight.Group // fills in flight, by name
	// tooBig holds the names of objects found larger than the bound: their
	// Loads pass through instead of fetching the whole object each time.
	tooBig sync.Map

	used      atomic.Int64 // estimated bytes under objects/
	sinceScan atomic.Int64 // bytes this Store filled since its last scan
	evictMu   sync.Mutex   // held by the one goroutine that scans and evicts

	// procLock stands in for flock where there is none (lock_other.go).
	procLock chan struct{}

	hits, misses, fills, bytesFilled, evictions, healed atomic.Int64
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Invalidator = (*Store)(nil)
)

// New returns a Store that caches inner's cacheable objects in dir,
// creating dir if needed. It scans dir once to learn its size and evicts
// if dir holds more than the bound.
func New(inner store.Store, dir string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Cacheable == nil {
		opts.Cacheable = defaultCacheable
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for _, sub := range []string{objectsDir, locksDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("cache: create %s: %w", dir, err)
		}
	}
	s := &Store{inner: inner, dir: dir, opts: opts, procLock: make(chan struct{}, 1)}
	total, err := s.evict("")
	if err != nil {
		return nil, fmt.Errorf("cache: scan %s: %w", dir, err)
	}
	s.used.Store(total)
	return s, nil
}

// DefaultDir returns the cache folder of the repository known by repoKey
// under the user's cache folder: <os.UserCacheDir>/sandsnap/<repoKey>.
func DefaultDir(repoKey string) (string, error) {
	if repoKey == "" || repoKey == "." || repoKey == ".." || strings.ContainsAny(repoKey, "/\\\x00") {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, repoKey)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache: user cache folder: %w", err)
	}
	return filepath.Join(base, "sandsnap", repoKey), nil
}

func defaultCacheable(name string) bool {
	return strings.HasPrefix(name, "packs/") || strings.HasPrefix(name, "index/")
}

// Dir returns the cache folder.
func (s *Store) Dir() string { return s.dir }

// Stats returns the counts so far, read field by field.
func (s *Store) Stats() Stats {
	return Stats{
		Hits: s.hits.Load(), Misses: s.misses.Load(), Fills: s.fills.Load(),
		BytesFilled: s.bytesFilled.Load(), Evictions: s.evictions.Load(),
		Healed: s.healed.Load(),
	}
}

// keyOf returns the hex SHA-256 of name, its cached file's name.
func keyOf(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func (s *Store) objectPath(key string) string {
	return filepath.Join(s.dir, objectsDir, key)
}

// Save saves data in the inner store and, for a cacheable name, puts it
// into the cache.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: save %q: %w", name, err)
	}
	if !s.opts.Cacheable(name) {
		return s.inner.Save(ctx, name, data, opts)
	}
	key := keyOf(name)
	if err := s.inner.Save(ctx, name, data, opts); err != nil {
		// ErrExists and ErrPrecondition changed nothing; other failures
		// may have applied the Save.
		if !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrPrecondition) {
			s.drop(key)
		}
		return err
	}
	// The object is saved: the cache must follow even if ctx ends now.
	unlock, err := s.lock(context.WithoutCancel(ctx), key)
	if err != nil {
		s.opts.Logf("cache: save %q: %v", name, err)
		s.drop(key)
		return nil
	}
	defer unlock()
	if err := s.put(key, data); err != nil {
		s.opts.Logf("cache: save %q: %v", name, err)
		s.drop(key)
	}
	return nil
}

// Load serves a range of name, from the cache if name is cacheable.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: load %q: %w", name, err)
	}
	if !s.opts.Cacheable(name) {
		return s.inner.Load(ctx, name, offset, length, fn)
	}
	if _, ok := s.tooBig.Load(name); ok {
		s.misses.Add(1)
		return s.inner.Load(ctx, name, offset, length, fn)
	}
	key := keyOf(name)
	// Each fill is followed by a read of the cached copy it made; a copy
	// that keeps vanishing (evicted as soon as filled) ends the loop.
	for attempt := 0; ; attempt++ {
		if done, err := s.serveCached(key, name, offset, length, fn); done {
			if attempt == 0 {
				s.hits.Add(1)
			}
			return err
		}
		if attempt == fillAttempts {
			break
		}
		if attempt == 0 {
			s.misses.Add(1)
		}
		pass, err := s.fill(ctx, key, name)
		if err != nil {
			return err
		}
		if pass {
			break
		}
	}
	return s.inner.Load(ctx, name, offset, length, fn)
}

// span checks a range of an object of size bytes and returns where it
// ends; length 0 means to the end.
func span(name string, size, offset, length int64) (int64, error) {
	end := offset + length
	if length == 0 {
		end = size
	}
	if offset < 0 || length < 0 || offset > size || end > size || end < offset {
		return 0, fmt.Errorf("cache: load %q [%d, +%d) of %d bytes: %w", name, offset, length, size, store.ErrInvalidRange)
	}
	return end, nil
}

// serveCached serves the range from name's cached copy if there is a
// sound one; it reports whether it did. An error with done true is final
// (a bad range or fn's own error). A copy whose read fails is dropped and
// done is false, so fn runs again over the inner store's bytes, as a
// retrying store may do.
func (s *Store) serveCached(key, name string, offset, length int64, fn func(io.Reader) error) (done bool, err error) {
	p := s.objectPath(key)
	f, fi, size, err := s.openCached(p)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	end, err := span(name, size, offset, length)
	if err != nil {
		return true, err
	}
	if now := s.opts.Now(); now.Sub(fi.ModTime()) >= touchEvery {
		_ = os.Chtimes(p, now, now) // best effort: a gone file needs no stamp
	}
	wr := &watchReader{r: io.NewSectionReader(f, headerSize+offset, end-offset), n: end - offset}
	err = fn(wr)
	if wr.err != nil {
		s.opts.Logf("cache: read %q from %s: %v; dropping it", name, p, wr.err)
		s.dropFile(p, fi)
		return false, nil
	}
	return true, err
}

// watchReader reads n bytes of a cached file and remembers the first
// error other than io.EOF; an io.EOF before n bytes (the file shrank)
// becomes io.ErrUnexpectedEOF, since a short read must never pass silently.
type watchReader struct {
	r   io.Reader
	n   int64 // bytes still expected
	err error
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n -= int64(n)
	if err == io.EOF && w.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// fill fetches name into the cache, once for all concurrent callers. It
// reports pass true if the object could not be cached (it does not fit the
// bound, or writing the file failed): the caller then reads the inner store
// directly. A caller whose own context is done stops waiting; a caller that
// waited on a fill whose leader was cancelled tries again.
func (s *Store) fill(ctx context.Context, key, name string) (pass bool, err error) {
	for attempt := 0; ; attempt++ {
		ch := s.group.DoChan(key, func() (any, error) { return s.fillLocked(ctx, key, name) })
		var r singleflight.Result
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("cache: load %q: %w", name, ctx.Err())
		case r = <-ch:
		}
		if r.Err != nil && ctx.Err() == nil && attempt+1 < fillAttempts &&
			(errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
			continue // the leader's context ended, not ours
		}
		pass, _ := r.Val.(bool)
		return pass, r.Err
	}
}

// fillLocked streams name from the inner store into a temporary file under
// its lock, verifies it and renames it into place; see fill. The object
// never sits in memory whole: it passes through one copy buffer.
func (s *Store) fillLocked(ctx context.Context, key, name string) (pass bool, err error) {
	unlock, err := s.lock(ctx, key)
	if err != nil {
		return false, fmt.Errorf("cache: lock %q: %w", name, err)
	}
	defer unlock()
	if f, _, _, err := s.openCached(s.objectPath(key)); err == nil {
		f.Close()
		return false, nil // another process filled it
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, objectsDir), tmpPrefix+"*")
	if err != nil {
		s.opts.Logf("cache: fill %q: %v", name, err)
		return true, nil
	}
	installed := false
	defer func() {
		if !installed {
			f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	w := &fillWriter{f: f, limit: s.opts.MaxBytes - headerSize}
	buf := make([]byte, copyBufSize)
	err = s.inner.Load(ctx, name, 0, 0, func(r io.Reader) error {
		w.reset() // anew on each call: a retry starts over
		if err := f.Truncate(headerSize); err != nil {
			w.err = err
			return err
		}
		_, err := io.CopyBuffer(w, r, buf)
		return err
	})
	switch {
	case w.tooBig:
		s.tooBig.Store(name, struct{}{})
		return true, nil
	case w.err != nil:
		s.opts.Logf("cache: fill %q: %v", name, w.err)
		return true, nil
	case err != nil:
		return false, err
	}
	if err := s.verify(name, f, w.n); err != nil {
		return false, fmt.Errorf("cache: verify %q: %w", name, err)
	}
	var h [headerSize]byte
	putHeader(h[:], w.n)
	_, err = f.WriteAt(h[:], 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		installed = true
		err = s.install(key, f.Name(), w.n)
	}
	if err != nil {
		s.opts.Logf("cache: fill %q: %v", name, err)
		return true, nil
	}
	return false, nil
}

// verify checks the n fetched bytes of name in the temporary file f with
// Options.VerifyReader or Options.Verify.
func (s *Store) verify(name string, f *os.File, n int64) error {
	r := io.NewSectionReader(f, headerSize, n)
	switch {
	case s.opts.VerifyReader != nil:
		return s.opts.VerifyReader(name, r)
	case s.opts.Verify != nil:
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		return s.opts.Verify(name, data)
	}
	return nil
}

// copyBufSize is the size of a fill's copy buffer.
const copyBufSize = 1 << 20

// errTooBig stops a fill whose object does not fit the bound.
var errTooBig = errors.New("cache: object larger than the bound")

// fillWriter writes a fill's bytes after the header of its temporary file.
// It keeps its own error apart from the inner store's: a failing disk makes
// the Load pass through, a failing fetch fails it.
type fillWriter struct {
	f      *os.File
	limit  int64 // most bytes that fit the bound
	n      int64
	tooBig bool
	err    error
}

func (w *fillWriter) reset() { w.n, w.tooBig, w.err = 0, false, nil }

func (w *fillWriter) Write(p []byte) (int, error) {
	if w.n+int64(len(p)) > w.limit {
		w.tooBig = true
		return 0, errTooBig
	}
	n, err := w.f.WriteAt(p, headerSize+w.n)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Stat passes through: existence in the real store is what matters.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("cache: stat %q: %w", name, err)
	}
	return s.inner.Stat(ctx, name)
}

// List passes through.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: list %q: %w", prefix, err)
	}
	return s.inner.List(ctx, prefix, fn)
}

// Remove removes name from the inner store, then drops its cached copy
// under the object's lock, so that a fill racing with the Remove cannot
// leave a copy behind it.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: remove %q: %w", name, err)
	}
	err := s.inner.Remove(ctx, name)
	if !s.opts.Cacheable(name) {
		return err
	}
	key := keyOf(name)
	if unlock, lerr := s.lock(context.WithoutCancel(ctx), key); lerr == nil {
		defer unlock()
	} else {
		s.opts.Logf("cache: remove %q: %v", name, lerr)
	}
	s.drop(key)
	return err
}

// Invalidate implements store.Invalidator: it drops the cached copy of
// name, if any, so that the next Load fetches the object from the inner
// store again, and forwards to the inner store. The repository calls it
// when bytes read through the cache fail their hash check: the copy may
// have rotted on this host's disk while the store holds a good one. A
// copy dropped counts in Stats.Healed and is logged. It works under the
// object's lock, so it cannot interleave with a fill of the same name.
func (s *Store) Invalidate(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: invalidate %q: %w", name, err)
	}
	if s.opts.Cacheable(name) {
		key := keyOf(name)
		unlock, err := s.lock(ctx, key)
		if err != nil {
			return fmt.Errorf("cache: invalidate %q: %w", name, err)
		}
		dropped, err := s.remove(s.objectPath(key))
		unlock()
		if err != nil {
			return fmt.Errorf("cache: invalidate %q: %w", name, err)
		}
		if dropped {
			s.healed.Add(1)
			s.opts.Logf("cache: dropped the cached copy of %q, which failed verification; it is fetched again", name)
		}
	}
	return store.Invalidate(ctx, s.inner, name)
}

// remove deletes the cached file p and reports whether there was one.
func (s *Store) remove(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err == nil {
		err = os.Remove(p)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	s.used.Add(-fi.Size())
	return true, nil
}

// drop deletes key's cached copy, logging a failure.
func (s *Store) drop(key string) {
	p := s.objectPath(key)
	if _, err := s.remove(p); err != nil {
		s.opts.Logf("cache: drop %s: %v", p, err)
	}
}
