package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/storetest"
)

// randBytes returns n pseudo-random bytes fixed by seed.
func randBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 9})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// cachedPath is where the package comment says name's cached copy lives.
func cachedPath(dir, name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(dir, "objects", hex.EncodeToString(sum[:]))
}

// cachedFiles returns the names of the files under dir/objects and their
// total size.
func cachedFiles(t *testing.T, dir string) ([]string, int64) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var total int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
		total += fi.Size()
	}
	return names, total
}

// fixture is a cache over a counting mem store.
type fixture struct {
	mem   *mem.Store
	inner *counting.Store
	c     *cache.Store
	dir   string
}

func newFixture(t *testing.T, opts cache.Options) *fixture {
	t.Helper()
	m := mem.New()
	inner := counting.New(m)
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := cache.New(inner, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{mem: m, inner: inner, c: c, dir: dir}
}

// seed saves objects into the inner store behind the cache's back.
func (f *fixture) seed(t *testing.T, objs map[string][]byte) {
	t.Helper()
	for name, data := range objs {
		if err := f.mem.Save(t.Context(), name, data, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSuite(t *testing.T) {
	for _, max := range []int64{0, 64 << 10} {
		t.Run(fmt.Sprintf("MaxBytes=%d", max), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				c, err := cache.New(mem.New(), t.TempDir(), cache.Options{MaxBytes: max})
				if err != nil {
					t.Fatal(err)
				}
				return c
			})
		})
	}
}

// methods calls each method of store.Store once on a cache that holds
// "packs/obj" ("0123456789", cached) and says what the inner store must
// see, what the cache must count, and how many files stay cached:
// together they show that the wrapper overrides Save (it caches), Load (it
// serves from the cache) and Remove (it drops the copy), and passes Stat
// and List through. TestMethodsCovered keeps the table complete.
var methods = []struct {
	name      string
	call      func(ctx context.Context, s store.Store) error
	wantInner counting.Stats
	wantCache cache.Stats
	wantFiles int
}{
	{"Save", func(ctx context.Context, s store.Store) error {
		return s.Save(ctx, "packs/new", []byte("abc"), store.SaveOptions{})
	}, counting.Stats{Puts: 1, BytesUp: 3}, cache.Stats{Fills: 1, BytesFilled: 3}, 2},
	{"Load", func(ctx context.Context, s store.Store) error {
		b, err := store.LoadAll(ctx, s, "packs/obj", 2, 3)
		if err == nil && string(b) != "234" {
			err = fmt.Errorf("loaded %q, want 234", b)
		}
		return err
	}, counting.Stats{}, cache.Stats{Hits: 1}, 1},
	{"Stat", func(ctx context.Context, s store.Store) error {
		_, err := s.Stat(ctx, "packs/obj")
		return err
	}, counting.Stats{Heads: 1}, cache.Stats{}, 1},
	{"List", func(ctx context.Context, s store.Store) error {
		return s.List(ctx, "", func(store.Info) error { return nil })
	}, counting.Stats{Lists: 1}, cache.Stats{}, 1},
	{"Remove", func(ctx context.Context, s store.Store) error {
		return s.Remove(ctx, "packs/obj")
	}, counting.Stats{Deletes: 1}, cache.Stats{}, 0},
	{"Invalidate", func(ctx context.Context, s store.Store) error {
		return store.Invalidate(ctx, s, "packs/obj")
	}, counting.Stats{}, cache.Stats{Healed: 1}, 0},
}

func TestMethodsCovered(t *testing.T) {
	want := storetest.WrapperMethods()
	var got []string
	for _, m := range methods {
		got = append(got, m.name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("test table covers %q, a wrapper must implement %q", got, want)
	}
}

func TestEveryMethod(t *testing.T) {
	for _, m := range methods {
		f := newFixture(t, cache.Options{})
		if err := f.c.Save(t.Context(), "packs/obj", []byte("0123456789"), store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		inner0, cache0 := f.inner.Stats(), f.c.Stats()
		if err := m.call(t.Context(), f.c); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if got := f.inner.Stats().Sub(inner0); got != m.wantInner {
			t.Errorf("%s: inner store saw %+v, want %+v", m.name, got, m.wantInner)
		}
		got := f.c.Stats()
		got = cache.Stats{Hits: got.Hits - cache0.Hits, Misses: got.Misses - cache0.Misses, Fills: got.Fills - cache0.Fills,
			BytesFilled: got.BytesFilled - cache0.BytesFilled, Evictions: got.Evictions - cache0.Evictions,
			Healed: got.Healed - cache0.Healed}
		if got != m.wantCache {
			t.Errorf("%s: cache counted %+v, want %+v", m.name, got, m.wantCache)
		}
		if files, _ := cachedFiles(t, f.dir); len(files) != m.wantFiles {
			t.Errorf("%s: %d cached files, want %d", m.name, len(files), m.wantFiles)
		}
		// A cancelled context stops every method before the inner store.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before := f.inner.Stats()
		if err := m.call(ctx, f.c); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", m.name, err)
		}
		if got := f.inner.Stats().Sub(before); got != (counting.Stats{}) {
			t.Errorf("%s with a cancelled context reached the inner store: %+v", m.name, got)
		}
	}
}

// TestHitMiss runs Loads in order and checks the counts after each.
func TestHitMiss(t *testing.T) {
	f := newFixture(t, cache.Options{})
	f.seed(t, map[string][]byte{
		"packs/a": randBytes(1, 5000),
		"index/i": randBytes(2, 300),
		"config":  []byte("cfg"),
	})
	steps := []struct {
		name           string
		offset, length int64
		wantErr        error
		wantGets       int64 // inner Loads so far
		want           cache.Stats
	}{
		{"packs/a", 10, 20, nil, 1, cache.Stats{Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"packs/a", 0, 0, nil, 1, cache.Stats{Hits: 1, Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"packs/a", 4999, 1, nil, 1, cache.Stats{Hits: 2, Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"packs/a", 4999, 2, store.ErrInvalidRange, 1, cache.Stats{Hits: 3, Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"config", 0, 0, nil, 2, cache.Stats{Hits: 3, Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"config", 0, 0, nil, 3, cache.Stats{Hits: 3, Misses: 1, Fills: 1, BytesFilled: 5000}},
		{"packs/missing", 0, 0, store.ErrNotFound, 4, cache.Stats{Hits: 3, Misses: 2, Fills: 1, BytesFilled: 5000}},
		{"packs/missing", 0, 0, store.ErrNotFound, 5, cache.Stats{Hits: 3, Misses: 3, Fills: 1, BytesFilled: 5000}},
		{"index/i", 0, 0, nil, 6, cache.Stats{Hits: 3, Misses: 4, Fills: 2, BytesFilled: 5300}},
		{"index/i", 299, 0, nil, 6, cache.Stats{Hits: 4, Misses: 4, Fills: 2, BytesFilled: 5300}},
	}
	for i, st := range steps {
		_, err := store.LoadAll(t.Context(), f.c, st.name, st.offset, st.length)
		if (st.wantErr == nil && err != nil) || (st.wantErr != nil && !errors.Is(err, st.wantErr)) {
			t.Errorf("step %d: Load(%q, %d, %d) error = %v, want %v", i, st.name, st.offset, st.length, err, st.wantErr)
		}
		if got := f.inner.Stats().Gets; got != st.wantGets {
			t.Errorf("step %d: %d inner Loads, want %d", i, got, st.wantGets)
		}
		if got := f.c.Stats(); got != st.want {
			t.Errorf("step %d: stats %+v, want %+v", i, got, st.want)
		}
	}
	if _, total := cachedFiles(t, f.dir); total != 5300+2*16 {
		t.Errorf("cached files hold %d bytes, want %d", total, 5300+2*16)
	}
}

// slowStore delays each Load, so that concurrent callers overlap.
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s slowStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	time.Sleep(s.delay)
	return s.Store.Load(ctx, name, offset, length, fn)
}

func TestConcurrentLoadsFetchOnce(t *testing.T) {
	m := mem.New()
	data := randBytes(3, 1<<20)
	if err := m.Save(t.Context(), "packs/p", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	inner := counting.New(slowStore{m, 20 * time.Millisecond})
	c, err := cache.New(inner, t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start.Wait()
			off := int64(i) * 1000
			got, err := store.LoadAll(t.Context(), c, "packs/p", off, 5000)
			if err != nil || !bytes.Equal(got, data[off:off+5000]) {
				t.Errorf("goroutine %d: Load = %d bytes, %v", i, len(got), err)
			}
		})
	}
	start.Done()
	wg.Wait()
	if got := inner.Stats().Gets; got != 1 {
		t.Errorf("%d inner Loads for %d concurrent Loads, want 1", got, n)
	}
	if st := c.Stats(); st.Fills != 1 || st.Hits+st.Misses != n {
		t.Errorf("stats %+v, want 1 fill and %d Loads", st, n)
	}
}

// TestLeaderCancelled: a Load waiting on another's fill does not fail
// because that other Load was cancelled.
func TestLeaderCancelled(t *testing.T) {
	m := mem.New()
	data := randBytes(4, 1000)
	if err := m.Save(t.Context(), "packs/p", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	var calls atomic.Int64
	inner := blockingStore{Store: m, block: func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-ctx.Done() // the first fill hangs until its Load is cancelled
			return ctx.Err()
		}
		return nil
	}}
	c, err := cache.New(inner, t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := store.LoadAll(ctx, c, "packs/p", 0, 0)
		leaderErr <- err
	}()
	<-entered
	followerErr := make(chan error, 1)
	var got []byte
	go func() {
		var err error
		got, err = store.LoadAll(t.Context(), c, "packs/p", 0, 0)
		followerErr <- err
	}()
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Load error = %v, want context.Canceled", err)
	}
	if err := <-followerErr; err != nil || !bytes.Equal(got, data) {
		t.Errorf("other Load = %d bytes, %v; want the object", len(got), err)
	}
}

// blockingStore runs block before each Load.
type blockingStore struct {
	store.Store
	block func(ctx context.Context) error
}

func (b blockingStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := b.block(ctx); err != nil {
		return err
	}
	return b.Store.Load(ctx, name, offset, length, fn)
}

func TestRanges(t *testing.T) {
	data := randBytes(5, 1000)
	tests := []struct {
		offset, length int64
		wantErr        bool
	}{
		{0, 0, false},
		{0, 10, false},
		{500, 100, false},
		{990, 10, false},
		{990, 0, false},
		{999, 1, false},
		{0, 1000, false},
		{1000, 0, false},
		{1000, 1, true},
		{995, 10, true},
		{0, 1001, true},
		{1001, 0, true},
		{5000, 10, true},
		{-1, 10, true},
		{0, -1, true},
	}
	for _, warm := range []bool{false, true} {
		f := newFixture(t, cache.Options{})
		f.seed(t, map[string][]byte{"packs/r": data})
		for _, tt := range tests {
			if !warm {
				if err := f.c.Invalidate(t.Context(), "packs/r"); err != nil {
					t.Fatal(err)
				}
			}
			got, err := store.LoadAll(t.Context(), f.c, "packs/r", tt.offset, tt.length)
			if tt.wantErr {
				if !errors.Is(err, store.ErrInvalidRange) {
					t.Errorf("warm %v: Load(%d, %d) error = %v, want ErrInvalidRange", warm, tt.offset, tt.length, err)
				}
				continue
			}
			end := tt.offset + tt.length
			if tt.length == 0 {
				end = int64(len(data))
			}
			if err != nil || !bytes.Equal(got, data[tt.offset:end]) {
				t.Errorf("warm %v: Load(%d, %d) = %d bytes, %v; want bytes [%d, %d)", warm, tt.offset, tt.length, len(got), err, tt.offset, end)
			}
		}
		wantGets := int64(1)
		if !warm {
			wantGets = int64(len(tests))
		}
		if got := f.inner.Stats().Gets; got != wantGets {
			t.Errorf("warm %v: %d inner Loads, want %d", warm, got, wantGets)
		}
	}
}

func TestVerify(t *testing.T) {
	errBad := errors.New("hash mismatch")
	f := newFixture(t, cache.Options{Verify: func(name string, data []byte) error {
		if name == "packs/bad" {
			return errBad
		}
		return nil
	}})
	f.seed(t, map[string][]byte{"packs/bad": []byte("rotten"), "packs/good": []byte("fine")})
	for i := range 2 {
		if _, err := store.LoadAll(t.Context(), f.c, "packs/bad", 0, 0); !errors.Is(err, errBad) {
			t.Errorf("Load #%d of a bad object error = %v, want errBad", i+1, err)
		}
	}
	if got := f.inner.Stats().Gets; got != 2 {
		t.Errorf("%d inner Loads, want 2: a bad object must not be cached", got)
	}
	if b, err := store.LoadAll(t.Context(), f.c, "packs/good", 0, 0); err != nil || string(b) != "fine" {
		t.Errorf("Load of a good object = %q, %v", b, err)
	}
	if files, _ := cachedFiles(t, f.dir); len(files) != 1 {
		t.Errorf("%d cached files, want only the good object", len(files))
	}
	if st := f.c.Stats(); st.Fills != 1 {
		t.Errorf("stats %+v, want 1 fill", st)
	}
}

// TestCorruptFileHeals damages the cached file in several ways: each Load
// must still return the right bytes, fetch once more from the inner store,
// and leave a sound file behind.
func TestCorruptFileHeals(t *testing.T) {
	data := randBytes(6, 4000)
	const fileSize = 4000 + 16
	tests := []struct {
		name   string
		damage func(p string) error
	}{
		{"empty", func(p string) error { return os.Truncate(p, 0) }},
		{"short header", func(p string) error { return os.Truncate(p, 10) }},
		{"header only", func(p string) error { return os.Truncate(p, 16) }},
		{"one byte short", func(p string) error { return os.Truncate(p, fileSize-1) }},
		{"one byte long", func(p string) error { return os.Truncate(p, fileSize+1) }},
		{"bad magic", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteAt([]byte("X"), 0)
			return errors.Join(err, f.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, cache.Options{})
			f.seed(t, map[string][]byte{"packs/c": data})
			if _, err := store.LoadAll(t.Context(), f.c, "packs/c", 0, 0); err != nil {
				t.Fatal(err)
			}
			p := cachedPath(f.dir, "packs/c")
			if err := tt.damage(p); err != nil {
				t.Fatal(err)
			}
			got, err := store.LoadAll(t.Context(), f.c, "packs/c", 3990, 10)
			if err != nil || !bytes.Equal(got, data[3990:]) {
				t.Errorf("Load after damage = %d bytes, %v", len(got), err)
			}
			if gets := f.inner.Stats().Gets; gets != 2 {
				t.Errorf("%d inner Loads, want 2", gets)
			}
			if fi, err := os.Stat(p); err != nil || fi.Size() != fileSize {
				t.Errorf("cached file after heal: %v, want %d bytes", err, fileSize)
			}
			if _, err := store.LoadAll(t.Context(), f.c, "packs/c", 0, 0); err != nil || f.inner.Stats().Gets != 2 {
				t.Errorf("Load after heal: %v with %d inner Loads, want a hit", err, f.inner.Stats().Gets)
			}
		})
	}
}

// TestEvictionLRU loads objects at set times and checks which stay cached.
func TestEvictionLRU(t *testing.T) {
	const size, fileSize = 1000, 1016
	const max = 3500 // three files fit; a fourth forces eviction to <= 3150
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now time.Time
	f := newFixture(t, cache.Options{MaxBytes: max, Now: func() time.Time { return now }})
	objs := map[string][]byte{}
	for i, n := range []string{"a", "b", "c", "d", "e", "f"} {
		objs["packs/"+n] = randBytes(uint64(10+i), size)
	}
	f.seed(t, objs)
	steps := []struct {
		at        time.Duration
		load      string
		wantFiles []string
		wantEvict int64
	}{
		{0, "a", []string{"a"}, 0},
		{2 * time.Minute, "b", []string{"a", "b"}, 0},
		{4 * time.Minute, "c", []string{"a", "b", "c"}, 0},
		{6 * time.Minute, "a", []string{"a", "b", "c"}, 0}, // a is used again
		{8 * time.Minute, "d", []string{"a", "c", "d"}, 1}, // b is the least recently used
		{10 * time.Minute, "e", []string{"a", "d", "e"}, 2},
		{10*time.Minute + 30*time.Second, "e", []string{"a", "d", "e"}, 2},
		// A fill stamped with an earlier clock is the oldest file, but the
		// file just filled is never evicted: a (6m) goes.
		{-time.Hour, "f", []string{"d", "e", "f"}, 3},
	}
	for i, st := range steps {
		now = t0.Add(st.at)
		got, err := store.LoadAll(t.Context(), f.c, "packs/"+st.load, 0, 0)
		if err != nil || !bytes.Equal(got, objs["packs/"+st.load]) {
			t.Fatalf("step %d: Load(%s) = %d bytes, %v", i, st.load, len(got), err)
		}
		var want []string
		for _, n := range st.wantFiles {
			want = append(want, filepath.Base(cachedPath(f.dir, "packs/"+n)))
		}
		slices.Sort(want)
		files, total := cachedFiles(t, f.dir)
		if !slices.Equal(files, want) {
			t.Errorf("step %d: cached %d files, want %v", i, len(files), st.wantFiles)
		}
		if total > max {
			t.Errorf("step %d: cached files hold %d bytes, over the bound %d", i, total, max)
		}
		if got := f.c.Stats().Evictions; got != st.wantEvict {
			t.Errorf("step %d: %d evictions, want %d", i, got, st.wantEvict)
		}
	}
}

// TestTouch: a hit stamps its file with the clock at most once a minute.
func TestTouch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now time.Time
	f := newFixture(t, cache.Options{Now: func() time.Time { return now }})
	f.seed(t, map[string][]byte{"packs/t": []byte("touch")})
	steps := []struct {
		at, wantMtime time.Duration
	}{
		{0, 0}, // the fill stamps the file
		{30 * time.Second, 0},
		{59 * time.Second, 0},
		{time.Minute, time.Minute},
		{90 * time.Second, time.Minute},
		{10 * time.Minute, 10 * time.Minute},
	}
	for _, st := range steps {
		now = t0.Add(st.at)
		if _, err := store.LoadAll(t.Context(), f.c, "packs/t", 0, 0); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(cachedPath(f.dir, "packs/t"))
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(st.wantMtime); !fi.ModTime().Equal(want) {
			t.Errorf("after a Load at +%v: mtime +%v, want +%v", st.at, fi.ModTime().Sub(t0), st.wantMtime)
		}
	}
}

// TestNewEvicts: a Store opened with a smaller bound over a full folder
// shrinks it at once.
func TestNewEvicts(t *testing.T) {
	f := newFixture(t, cache.Options{})
	for i := range 10 {
		name := fmt.Sprintf("packs/%d", i)
		if err := f.c.Save(t.Context(), name, randBytes(uint64(i), 984), store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, total := cachedFiles(t, f.dir); total != 10_000 {
		t.Fatalf("cached files hold %d bytes, want 10000", total)
	}
	c, err := cache.New(f.inner, f.dir, cache.Options{MaxBytes: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if files, total := cachedFiles(t, f.dir); total > 4500 || len(files) != 4 || c.Stats().Evictions != 6 {
		t.Errorf("after New with a 5000-byte bound: %d files of %d bytes, %d evictions; want 4 files", len(files), total, c.Stats().Evictions)
	}
}

func TestTooBigNotCached(t *testing.T) {
	f := newFixture(t, cache.Options{MaxBytes: 1000})
	data := randBytes(7, 2000)
	f.seed(t, map[string][]byte{"packs/big": data})
	for i := range 2 {
		got, err := store.LoadAll(t.Context(), f.c, "packs/big", 100, 50)
		if err != nil || !bytes.Equal(got, data[100:150]) {
			t.Errorf("Load #%d = %d bytes, %v", i+1, len(got), err)
		}
	}
	if err := f.c.Save(t.Context(), "packs/big2", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	// The first Load's fill stopped once the object passed the bound (here
	// after the store's one read of 2000 bytes) and passed its range
	// through; the second Load knew and passed its range through at once.
	if got := f.inner.Stats().BytesDown; got != 2000+50+50 {
		t.Errorf("inner store sent %d bytes, want %d", got, 2000+50+50)
	}
	if files, _ := cachedFiles(t, f.dir); len(files) != 0 || f.inner.Stats().Gets != 3 || f.c.Stats().Fills != 0 {
		t.Errorf("%d files, %d inner Loads, %+v; want nothing cached", len(files), f.inner.Stats().Gets, f.c.Stats())
	}
}

// TestSaveKeepsCacheTrue: what the cache holds after a Save follows what
// the inner store holds.
func TestSaveKeepsCacheTrue(t *testing.T) {
	tests := []struct {
		name     string
		first    bool // cache "first" before the Save
		opts     store.SaveOptions
		fault    faulty.Kind // injected on the Save
		wantErr  error
		wantFile string // cached content afterwards; "" for none
	}{
		{"new object", false, store.SaveOptions{}, faulty.None, nil, "second"},
		{"overwrite", true, store.SaveOptions{}, faulty.None, nil, "second"},
		{"create-only finds it", true, store.SaveOptions{IfNoneMatch: true}, faulty.None, store.ErrExists, "first"},
		{"if-match stale", true, store.SaveOptions{IfMatch: "stale"}, faulty.None, store.ErrPrecondition, "first"},
		{"failed before", true, store.SaveOptions{}, faulty.FailBefore, faulty.ErrInjected, ""},
		{"failed after applying", true, store.SaveOptions{}, faulty.FailAfter, faulty.ErrInjected, ""},
		{"non-cacheable", false, store.SaveOptions{}, faulty.None, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "packs/x"
			if tt.name == "non-cacheable" {
				name = "snapshots/x"
			}
			m := mem.New()
			fs := faulty.New(m, faulty.Options{Inject: func(method faulty.Method, _ string) faulty.Kind {
				if method == faulty.Save {
					return tt.fault
				}
				return faulty.None
			}})
			dir := t.TempDir()
			c, err := cache.New(fs, dir, cache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.first {
				if err := m.Save(t.Context(), name, []byte("first"), store.SaveOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := store.LoadAll(t.Context(), c, name, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			err = c.Save(t.Context(), name, []byte("second"), tt.opts)
			if (tt.wantErr == nil && err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Save error = %v, want %v", err, tt.wantErr)
			}
			b, err := os.ReadFile(cachedPath(dir, name))
			switch {
			case tt.wantFile == "" && !errors.Is(err, os.ErrNotExist):
				t.Errorf("cached file: %q, %v; want none", b, err)
			case tt.wantFile != "" && (err != nil || len(b) < 16 || string(b[16:]) != tt.wantFile):
				t.Errorf("cached file: %q, %v; want %q after the header", b, err, tt.wantFile)
			}
		})
	}
}

// TestInvalidate: Invalidate drops a cached copy (counted in Healed), so
// the next Load fetches the object again; an uncached name is no error
// and counts nothing.
func TestInvalidate(t *testing.T) {
	f := newFixture(t, cache.Options{})
	f.seed(t, map[string][]byte{"packs/e": []byte("evict me")})
	for i := range 2 {
		if _, err := store.LoadAll(t.Context(), f.c, "packs/e", 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.c.Invalidate(t.Context(), "packs/e"); err != nil {
			t.Errorf("Invalidate #%d: %v", i+1, err)
		}
	}
	if err := f.c.Invalidate(t.Context(), "packs/never"); err != nil {
		t.Errorf("Invalidate of an uncached name: %v", err)
	}
	if got := f.inner.Stats().Gets; got != 2 {
		t.Errorf("%d inner Loads, want 2: Invalidate must force a new fetch", got)
	}
	if got := f.c.Stats().Healed; got != 2 {
		t.Errorf("Healed = %d, want 2 (one per cached copy dropped)", got)
	}
	if files, _ := cachedFiles(t, f.dir); len(files) != 0 {
		t.Errorf("%d cached files after Invalidate, want 0", len(files))
	}
}

// TestInvalidateForwards: a cache over a cache drops both copies, and the
// helper does nothing for a store without the capability.
func TestInvalidateForwards(t *testing.T) {
	inner := mem.New()
	if err := inner.Save(t.Context(), "packs/x", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	lower, err := cache.New(inner, t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	upper, err := cache.New(lower, t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadAll(t.Context(), upper, "packs/x", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := store.Invalidate(t.Context(), upper, "packs/x"); err != nil {
		t.Fatal(err)
	}
	if u, l := upper.Stats().Healed, lower.Stats().Healed; u != 1 || l != 1 {
		t.Errorf("Healed: upper %d, lower %d; want 1 and 1", u, l)
	}
	if err := store.Invalidate(t.Context(), inner, "packs/x"); err != nil {
		t.Errorf("Invalidate on a store without the capability: %v", err)
	}
}

// TestReadFailureFallsBack: a cached file that fails while fn reads it
// (here: it shrinks under the reader) is dropped, and fn runs again over
// the inner store's bytes, as a retrying store may do.
func TestReadFailureFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		damage func(p string) error
	}{
		{"shrinks", func(p string) error { return os.Truncate(p, 16+150) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, cache.Options{})
			data := randBytes(8, 3000)
			f.seed(t, map[string][]byte{"packs/r": data})
			if _, err := store.LoadAll(t.Context(), f.c, "packs/r", 0, 0); err != nil {
				t.Fatal(err)
			}
			p := cachedPath(f.dir, "packs/r")
			calls := 0
			var got []byte
			err := f.c.Load(t.Context(), "packs/r", 100, 1000, func(r io.Reader) error {
				calls++
				if calls == 1 {
					if err := tt.damage(p); err != nil {
						t.Fatal(err)
					}
				}
				var err error
				got, err = io.ReadAll(r)
				return err
			})
			if err != nil || !bytes.Equal(got, data[100:1100]) || calls != 2 {
				t.Errorf("Load over a failing cached file = %d bytes, %v after %d calls of fn; want the bytes after 2", len(got), err, calls)
			}
			if fi, err := os.Stat(p); err != nil || fi.Size() != 3016 {
				t.Errorf("cached file after the fall-back: %v; want it healed", err)
			}
		})
	}
}

func TestDefaultDir(t *testing.T) {
	tests := []struct {
		key     string
		wantErr bool
	}{
		{"3f2a9c", false},
		{"repo.with-dots", false},
		{"", true},
		{".", true},
		{"..", true},
		{"a/b", true},
		{`a\b`, true},
		{"a\x00b", true},
	}
	for _, tt := range tests {
		dir, err := cache.DefaultDir(tt.key)
		if tt.wantErr {
			if !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("DefaultDir(%q) = %q, %v; want ErrInvalidKey", tt.key, dir, err)
			}
			continue
		}
		base, berr := os.UserCacheDir()
		if berr != nil {
			t.Skipf("no user cache folder: %v", berr)
		}
		if want := filepath.Join(base, "sandsnap", tt.key); err != nil || dir != want {
			t.Errorf("DefaultDir(%q) = %q, %v; want %q", tt.key, dir, err, want)
		}
	}
}

func TestStatsJSON(t *testing.T) {
	js, err := json.Marshal(cache.Stats{Hits: 1, Misses: 2, Fills: 3, BytesFilled: 4, Evictions: 5, Healed: 6})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"hits":1,"misses":2,"fills":3,"bytes_filled":4,"evictions":5,"healed":6}`
	if string(js) != want {
		t.Errorf("JSON = %s, want %s", js, want)
	}
}

func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	if _, err := cache.New(mem.New(), dir, cache.Options{}); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "objects", ".tmp-old")
	fresh := filepath.Join(dir, "objects", ".tmp-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(mem.New(), dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a temporary file two hours old survived the scan: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
	if _, err := store.LoadAll(t.Context(), c, "packs/none", 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a missing object error = %v, want ErrNotFound", err)
	}
}
