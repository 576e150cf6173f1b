package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// Run runs the conformance suite. newStore must return a new, empty store
// each time it is called; it is called once per subtest and may register
// cleanups with t.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"LoadRanges", testLoadRanges},
		{"Missing", testMissing},
		{"Stat", testStat},
		{"ModTime", testModTime},
		{"ZeroLength", testZeroLength},
		{"List", testList},
		{"ListMany", testListMany},
		{"ListEmpty", testListEmpty},
		{"ListFnError", testListFnError},
		{"LoadFnError", testLoadFnError},
		{"Remove", testRemove},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfNoneMatchRace", testIfNoneMatchRace},
		{"IfMatch", testIfMatch},
		{"IfMatchRace", testIfMatchRace},
		{"InvalidName", testInvalidName},
		{"Large", testLarge},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// hexName returns a 64-hex-digit name element derived from seed, shaped
// like the IDs the repository uses.
func hexName(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return fmt.Sprintf("%x", sum)
}

// randBytes returns n pseudo-random bytes fixed by seed.
func randBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 7})
	b := make([]byte, n)
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

func save(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Save(t.Context(), name, data, store.SaveOptions{}); err != nil {
		t.Fatalf("Save(%q): %v", name, err)
	}
}

func load(t *testing.T, s store.Store, name string, offset, length int64) []byte {
	t.Helper()
	got, err := store.LoadAll(t.Context(), s, name, offset, length)
	if err != nil {
		t.Fatalf("Load(%q, %d, %d): %v", name, offset, length, err)
	}
	return got
}

func stat(t *testing.T, s store.Store, name string) store.Info {
	t.Helper()
	fi, err := s.Stat(t.Context(), name)
	if err != nil {
		t.Fatalf("Stat(%q): %v", name, err)
	}
	return fi
}

// list returns the Infos that List(prefix) reports.
func list(t *testing.T, s store.Store, prefix string) []store.Info {
	t.Helper()
	var infos []store.Info
	err := s.List(t.Context(), prefix, func(fi store.Info) error {
		infos = append(infos, fi)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func names(infos []store.Info) []string {
	out := make([]string, len(infos))
	for i, fi := range infos {
		out[i] = fi.Name
	}
	return out
}

// layoutNames are names shaped like the repository's objects.
func layoutNames() []string {
	return []string{
		"config",
		"packs/ab/" + hexName("p1"),
		"packs/" + hexName("p2")[:2] + "/" + hexName("p2"),
		"index/" + hexName("i1"),
		"snapshots/" + hexName("s1"),
		"leases/writer-1",
		"gc/state",
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	sizes := []int{1, 2, 100, 4096, 65536 + 3}
	for i, name := range layoutNames() {
		data := randBytes(uint64(i), sizes[i%len(sizes)])
		save(t, s, name, data)
		if got := load(t, s, name, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("Load(%q) = %d bytes, want the %d saved", name, len(got), len(data))
		}
		if fi := stat(t, s, name); fi.Name != name || fi.Size != int64(len(data)) {
			t.Errorf("Stat(%q) = name %q size %d, want size %d", name, fi.Name, fi.Size, len(data))
		}
	}
}

func testOverwrite(t *testing.T, s store.Store) {
	name := "snapshots/" + hexName("over")
	save(t, s, name, []byte("first version, longer"))
	before := stat(t, s, name)
	save(t, s, name, []byte("second"))
	if got := load(t, s, name, 0, 0); string(got) != "second" {
		t.Errorf("Load after overwrite = %q, want %q", got, "second")
	}
	after := stat(t, s, name)
	if after.Size != 6 {
		t.Errorf("Stat after overwrite: size %d, want 6", after.Size)
	}
	if after.ETag == before.ETag {
		t.Errorf("ETag %q unchanged after overwrite with other bytes", after.ETag)
	}
}

func testLoadRanges(t *testing.T, s store.Store) {
	const name = "packs/00/ranges"
	data := randBytes(1, 1000)
	save(t, s, name, data)
	tests := []struct {
		offset, length int64
		want           []byte // nil with wantErr
		wantErr        error
	}{
		{0, 0, data, nil},
		{0, 10, data[:10], nil},
		{500, 100, data[500:600], nil},
		{990, 10, data[990:], nil},
		{990, 0, data[990:], nil},
		{999, 1, data[999:], nil},
		{0, 1000, data, nil},
		{1000, 0, []byte{}, nil},
		{1000, 1, nil, store.ErrInvalidRange},
		{995, 10, nil, store.ErrInvalidRange},
		{0, 1001, nil, store.ErrInvalidRange},
		{1001, 0, nil, store.ErrInvalidRange},
		{5000, 10, nil, store.ErrInvalidRange},
		{-1, 10, nil, store.ErrInvalidRange},
		{0, -1, nil, store.ErrInvalidRange},
	}
	for _, tt := range tests {
		got, err := store.LoadAll(t.Context(), s, name, tt.offset, tt.length)
		switch {
		case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
			t.Errorf("Load(%d, %d) error = %v, want %v", tt.offset, tt.length, err, tt.wantErr)
		case tt.wantErr == nil && err != nil:
			t.Errorf("Load(%d, %d): %v", tt.offset, tt.length, err)
		case tt.wantErr == nil && !bytes.Equal(got, tt.want):
			t.Errorf("Load(%d, %d) = %d bytes, want %d (bytes %d..)", tt.offset, tt.length, len(got), len(tt.want), tt.offset)
		}
	}
}

func testMissing(t *testing.T, s store.Store) {
	save(t, s, "packs/ab/present", []byte("x"))
	for _, name := range []string{"missing", "packs/ab/missing", "packs/ab", "packs", "packs/ab/present/x"} {
		_, err := store.LoadAll(t.Context(), s, name, 0, 0)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%q) error = %v, want ErrNotFound", name, err)
		}
		_, err = store.LoadAll(t.Context(), s, name, 5, 10)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%q, 5, 10) error = %v, want ErrNotFound", name, err)
		}
		if _, err := s.Stat(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", name, err)
		}
	}
}

func testStat(t *testing.T, s store.Store) {
	name := "index/" + hexName("stat")
	save(t, s, name, []byte("hello"))
	fi := stat(t, s, name)
	if fi.Name != name {
		t.Errorf("Stat name = %q, want %q", fi.Name, name)
	}
	if fi.Size != 5 {
		t.Errorf("Stat size = %d, want 5", fi.Size)
	}
	if fi.ETag == "" {
		t.Error("Stat ETag is empty")
	}
	if fi.ModTime.IsZero() {
		t.Error("Stat ModTime is zero")
	}
}

// maxClockSkew is how far a store's clock may be from this host's. A
// remote store stamps ModTime with its own clock, which leases and TTLs
// trust precisely because hosts' clocks may be off; a ModTime further than
// this from the host's time is a bug (a zero, a writer-supplied or a local
// time mistaken for UTC), not skew.
const maxClockSkew = 5 * time.Minute

// modTimeResolution is the coarsest ModTime a store may report: S3's HEAD
// gives whole seconds (its LIST gives milliseconds).
const modTimeResolution = time.Second

// testModTime pins what leases, clock probes and TTLs rely on: the store
// stamps every Save with its own clock (close to the host's), Stat and
// List agree, an overwrite moves ModTime forward, and an object written
// later is never stamped earlier.
func testModTime(t *testing.T, s store.Store) {
	name := "leases/" + hexName("modtime")
	before := time.Now()
	save(t, s, name, []byte("v1"))
	first := stat(t, s, name).ModTime
	if first.Before(before.Add(-maxClockSkew)) || first.After(time.Now().Add(maxClockSkew)) {
		t.Fatalf("ModTime %v of a new object is more than %v from this host's time %v", first, maxClockSkew, before)
	}
	if infos := list(t, s, name); len(infos) != 1 || absDuration(infos[0].ModTime.Sub(first)) > modTimeResolution {
		t.Errorf("List gives ModTime %v, Stat %v", infos, first)
	}
	// Overwrite until the stamp moves: at once for stores with fine
	// stamps, after up to a second for S3. It must never move back.
	var last time.Time
	for deadline := time.Now().Add(3 * modTimeResolution); ; {
		save(t, s, name, []byte("v2"))
		last = stat(t, s, name).ModTime
		if last.Before(first) {
			t.Fatalf("ModTime went back on overwrite: %v, then %v", first, last)
		}
		if last.After(first) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !last.After(first) {
		t.Errorf("ModTime stayed %v over %v of overwrites", first, 3*modTimeResolution)
	}
	probe := "clock/" + hexName("probe")
	save(t, s, probe, nil)
	if p := stat(t, s, probe).ModTime; p.Before(last) {
		t.Errorf("an object written later has an earlier ModTime: %v, after %v", p, last)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func testZeroLength(t *testing.T, s store.Store) {
	const name = "empty"
	save(t, s, name, nil)
	if fi := stat(t, s, name); fi.Size != 0 || fi.ETag == "" {
		t.Errorf("Stat = size %d ETag %q, want size 0 and an ETag", fi.Size, fi.ETag)
	}
	if got := load(t, s, name, 0, 0); len(got) != 0 {
		t.Errorf("Load = %d bytes, want 0", len(got))
	}
	if _, err := store.LoadAll(t.Context(), s, name, 0, 1); !errors.Is(err, store.ErrInvalidRange) {
		t.Errorf("Load(0, 1) error = %v, want ErrInvalidRange", err)
	}
	if infos := list(t, s, ""); len(infos) != 1 || infos[0].Name != name || infos[0].Size != 0 {
		t.Errorf("List = %+v, want one empty object %q", infos, name)
	}
}

func testList(t *testing.T, s store.Store) {
	// "x-b" < "x.y" < "x/a": a store that walks directories must not list
	// a directory's contents before a sibling name that sorts first.
	all := []string{
		"config",
		"index/" + hexName("i1"),
		"packs/ab/" + hexName("a1"),
		"packs/ab/" + hexName("a2"),
		"packs/ac/" + hexName("c1"),
		"packs/b0/" + hexName("b1"),
		"snapshots/" + hexName("s1"),
		"x-b",
		"x.y",
		"x/a",
		"x/b/c",
		"x0",
	}
	for i, name := range slices.Backward(all) { // save out of order
		save(t, s, name, randBytes(uint64(i), i+1))
	}
	slices.Sort(all)
	// want is the definition: the names with the prefix, in lexical order;
	// wantN guards the table against typos in the prefixes.
	tests := []struct {
		prefix string
		wantN  int
	}{
		{"", len(all)},
		{"packs/", 4},
		{"packs/a", 3},
		{"packs/ab/", 2},
		{"packs/ab/" + hexName("a1"), 1},
		{"conf", 1},
		{"config", 1},
		{"config/", 0},
		{"x", 5},
		{"x/", 2},
		{"nothing", 0},
		{"nothing/", 0},
	}
	for _, tt := range tests {
		var want []string
		for _, name := range all {
			if strings.HasPrefix(name, tt.prefix) {
				want = append(want, name)
			}
		}
		got := names(list(t, s, tt.prefix))
		if !slices.Equal(got, want) || len(got) != tt.wantN {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, want)
		}
	}
	for _, fi := range list(t, s, "") {
		st := stat(t, s, fi.Name)
		if fi.Size != st.Size || fi.ETag != st.ETag || fi.ETag == "" || fi.ModTime.IsZero() {
			t.Errorf("List gives %q size %d ETag %q ModTime %v; Stat gives size %d ETag %q",
				fi.Name, fi.Size, fi.ETag, fi.ModTime, st.Size, st.ETag)
		}
	}
}

func testListMany(t *testing.T, s store.Store) {
	const n = 1100 // more than one S3 page of 1000 keys
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("many/%04d", i)
	}
	parallel(t, 8, n, func(i int) error {
		return s.Save(t.Context(), want[i], []byte{byte(i)}, store.SaveOptions{})
	})
	if t.Failed() {
		return
	}
	save(t, s, "manz", nil)
	if got := names(list(t, s, "many/")); !slices.Equal(got, want) {
		t.Errorf("List(many/) gave %d names (first %q), want %d in order", len(got), got[:min(3, len(got))], n)
	}
	if got := names(list(t, s, "")); len(got) != n+1 || !slices.IsSorted(got) {
		t.Errorf("List(\"\") gave %d names (sorted %v), want %d sorted", len(got), slices.IsSorted(got), n+1)
	}
}

// parallel runs fn(0..n-1) on workers goroutines and reports every error.
func parallel(t *testing.T, workers, n int, fn func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					t.Errorf("item %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
}

func testListEmpty(t *testing.T, s store.Store) {
	for _, prefix := range []string{"", "packs/", "x"} {
		if infos := list(t, s, prefix); len(infos) != 0 {
			t.Errorf("List(%q) on an empty store = %q", prefix, names(infos))
		}
	}
}

var errFromFn = errors.New("storetest: error from fn")

func testListFnError(t *testing.T, s store.Store) {
	for _, name := range []string{"a", "b", "c"} {
		save(t, s, name, []byte(name))
	}
	calls := 0
	err := s.List(t.Context(), "", func(store.Info) error {
		calls++
		return errFromFn
	})
	if !errors.Is(err, errFromFn) || calls != 1 {
		t.Errorf("List with failing fn = %v after %d calls, want errFromFn after 1", err, calls)
	}
}

func testLoadFnError(t *testing.T, s store.Store) {
	save(t, s, "a", []byte("some bytes"))
	calls := 0
	err := s.Load(t.Context(), "a", 0, 0, func(io.Reader) error {
		calls++
		return errFromFn
	})
	if !errors.Is(err, errFromFn) || calls != 1 {
		t.Errorf("Load with failing fn = %v after %d calls, want errFromFn after 1", err, calls)
	}
}

func testRemove(t *testing.T, s store.Store) {
	name := "packs/ab/" + hexName("rm")
	save(t, s, name, []byte("doomed"))
	save(t, s, "packs/ab/keep", []byte("kept"))
	for i := range 2 { // the second Remove finds nothing, which is no error
		if err := s.Remove(t.Context(), name); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := s.Stat(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Remove error = %v, want ErrNotFound", err)
	}
	if _, err := store.LoadAll(t.Context(), s, name, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load after Remove error = %v, want ErrNotFound", err)
	}
	if got := names(list(t, s, "")); !slices.Equal(got, []string{"packs/ab/keep"}) {
		t.Errorf("List after Remove = %q, want only packs/ab/keep", got)
	}
	if err := s.Remove(t.Context(), "never/saved"); err != nil {
		t.Errorf("Remove of a missing name: %v", err)
	}
	save(t, s, name, []byte("again")) // a removed name can be saved again
	if got := load(t, s, name, 0, 0); string(got) != "again" {
		t.Errorf("Load after re-Save = %q", got)
	}
}

func testIfNoneMatch(t *testing.T, s store.Store) {
	create := store.SaveOptions{IfNoneMatch: true}
	name := "snapshots/" + hexName("create")
	if err := s.Save(t.Context(), name, []byte("first"), create); err != nil {
		t.Fatalf("first create: %v", err)
	}
	if err := s.Save(t.Context(), name, []byte("second"), create); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create error = %v, want ErrExists", err)
	}
	if got := load(t, s, name, 0, 0); string(got) != "first" {
		t.Errorf("content after failed create = %q, want %q", got, "first")
	}
	if err := s.Remove(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(t.Context(), name, []byte("third"), create); err != nil {
		t.Errorf("create after Remove: %v", err)
	}
}

func testIfNoneMatchRace(t *testing.T, s store.Store) {
	const racers = 8
	name := "config"
	var wins, exists atomic.Int64
	var winner atomic.Int64
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			err := s.Save(t.Context(), name, fmt.Appendf(nil, "racer %d", i), store.SaveOptions{IfNoneMatch: true})
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(int64(i))
			case errors.Is(err, store.ErrExists):
				exists.Add(1)
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != racers-1 {
		t.Fatalf("%d creates won and %d got ErrExists, want 1 and %d", wins.Load(), exists.Load(), racers-1)
	}
	if got, want := string(load(t, s, name, 0, 0)), fmt.Sprintf("racer %d", winner.Load()); got != want {
		t.Errorf("content = %q, want the winner's %q", got, want)
	}
}

func testIfMatch(t *testing.T, s store.Store) {
	name := "gc/state"
	save(t, s, name, []byte("v1"))
	e1 := stat(t, s, name).ETag
	if err := s.Save(t.Context(), name, []byte("v2"), store.SaveOptions{IfMatch: e1}); err != nil {
		t.Fatalf("Save if-match current ETag: %v", err)
	}
	if got := load(t, s, name, 0, 0); string(got) != "v2" {
		t.Errorf("content = %q, want v2", got)
	}
	for _, etag := range []string{e1, "not-an-etag", `"0123456789abcdef0123456789abcdef"`} {
		err := s.Save(t.Context(), name, []byte("v3"), store.SaveOptions{IfMatch: etag})
		if !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("Save if-match stale ETag %q error = %v, want ErrPrecondition", etag, err)
		}
	}
	if got := load(t, s, name, 0, 0); string(got) != "v2" {
		t.Errorf("content after failed if-match = %q, want v2", got)
	}
	err := s.Save(t.Context(), "gc/missing", []byte("x"), store.SaveOptions{IfMatch: e1})
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("Save if-match on a missing name error = %v, want ErrNotFound or ErrPrecondition", err)
	}
	if _, err := s.Stat(t.Context(), "gc/missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed if-match created the object: Stat error = %v", err)
	}
}

func testIfMatchRace(t *testing.T, s store.Store) {
	const racers = 8
	name := "leases/shared"
	save(t, s, name, []byte("v0"))
	e0 := stat(t, s, name).ETag
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			err := s.Save(t.Context(), name, fmt.Appendf(nil, "racer %d", i), store.SaveOptions{IfMatch: e0})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrPrecondition):
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d if-match saves of one ETag won, want exactly 1", wins.Load())
	}
}

func testInvalidName(t *testing.T, s store.Store) {
	bad := []string{"", "/abs", "/", "a/", ".", "..", "a/../b", "../a", "a/./b", "a/..", "a\x00b"}
	for _, name := range bad {
		if err := s.Save(t.Context(), name, []byte("x"), store.SaveOptions{}); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Save(%q) error = %v, want ErrInvalidName", name, err)
		}
		if _, err := store.LoadAll(t.Context(), s, name, 0, 0); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Load(%q) error = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Stat(t.Context(), name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalidName", name, err)
		}
		if err := s.Remove(t.Context(), name); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Remove(%q) error = %v, want ErrInvalidName", name, err)
		}
	}
	if infos := list(t, s, ""); len(infos) != 0 {
		t.Errorf("invalid names left objects behind: %q", names(infos))
	}
}

func testLarge(t *testing.T, s store.Store) {
	const size = 20 << 20
	name := "packs/la/" + hexName("large")
	data := randBytes(20, size)
	save(t, s, name, data)
	want := sha256.Sum256(data)
	err := s.Load(t.Context(), name, 0, 0, func(r io.Reader) error {
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
			return fmt.Errorf("read %d bytes with another hash, want %d bytes", n, size)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	const off, n = 13<<20 + 17, 1 << 20
	if got := load(t, s, name, off, n); !bytes.Equal(got, data[off:off+n]) {
		t.Errorf("Load of a 1 MiB range in the middle differs")
	}
	if fi := stat(t, s, name); fi.Size != size {
		t.Errorf("Stat size = %d, want %d", fi.Size, size)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 10
	parallel(t, workers, workers*perWorker, func(i int) error {
		name := fmt.Sprintf("packs/%02x/%s", i, hexName(fmt.Sprint(i)))
		data := randBytes(uint64(i), 1000+i*37)
		ctx := t.Context()
		if err := s.Save(ctx, name, data, store.SaveOptions{}); err != nil {
			return err
		}
		got, err := store.LoadAll(ctx, s, name, 0, 0)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return fmt.Errorf("%s: loaded other bytes", name)
		}
		fi, err := s.Stat(ctx, name)
		if err != nil {
			return err
		}
		if fi.Size != int64(len(data)) {
			return fmt.Errorf("%s: size %d, want %d", name, fi.Size, len(data))
		}
		return s.List(ctx, "packs/", func(store.Info) error { return nil })
	})
	if got := len(list(t, s, "packs/")); got != workers*perWorker {
		t.Errorf("List found %d objects, want %d", got, workers*perWorker)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	save(t, s, "kept", []byte("kept"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, opts := range []store.SaveOptions{{}, {IfNoneMatch: true}} {
		if err := s.Save(ctx, "cancelled", []byte("x"), opts); !errors.Is(err, context.Canceled) {
			t.Errorf("Save(%+v) with a cancelled context error = %v, want context.Canceled", opts, err)
		}
	}
	etag := stat(t, s, "kept").ETag
	if err := s.Save(ctx, "kept", []byte("changed"), store.SaveOptions{IfMatch: etag}); !errors.Is(err, context.Canceled) {
		t.Errorf("Save if-match with a cancelled context error = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(t.Context(), "cancelled"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a Save with a cancelled context left an object: Stat error = %v", err)
	}
	calls := 0
	err := s.Load(ctx, "kept", 0, 0, func(io.Reader) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context error = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context error = %v, want context.Canceled", err)
	}
	err = s.List(ctx, "", func(store.Info) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context error = %v, want context.Canceled", err)
	}
	if calls != 0 {
		t.Errorf("fn was called %d times under a cancelled context", calls)
	}
	if err := s.Remove(ctx, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with a cancelled context error = %v, want context.Canceled", err)
	}
	if got := load(t, s, "kept", 0, 0); string(got) != "kept" {
		t.Errorf("content after cancelled calls = %q, want %q", got, "kept")
	}
}
