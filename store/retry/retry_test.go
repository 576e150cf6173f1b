package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/retry"
	"github.com/sandsnap/sandsnap/store/storetest"
)

var errTransient = errors.New("transient test failure")

// noSleep makes retries immediate.
func noSleep(context.Context, time.Duration) error { return nil }

// fake is a store whose calls fail as its fail function says; it serves
// one object "obj" holding "data" and lists names.
type fake struct {
	fail  func(method string, call int) error // call counts from 1 per method
	names []string

	mu    sync.Mutex // guards calls
	calls map[string]int
}

func (f *fake) enter(method string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]int)
	}
	f.calls[method]++
	n := f.calls[method]
	f.mu.Unlock()
	if f.fail == nil {
		return nil
	}
	return f.fail(method, n)
}

func (f *fake) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fake) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	return f.enter("Save")
}

func (f *fake) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := f.enter("Load"); err != nil {
		return err
	}
	return fn(strings.NewReader("data"))
}

func (f *fake) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := f.enter("Stat"); err != nil {
		return store.Info{}, err
	}
	return store.Info{Name: name, Size: 4, ETag: "e"}, nil
}

func (f *fake) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := f.enter("List"); err != nil {
		return err
	}
	for _, name := range f.names {
		if err := fn(store.Info{Name: name}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) Remove(ctx context.Context, name string) error { return f.enter("Remove") }

// methods calls each method of store.Store once; TestMethodsCovered keeps
// it complete, so that a method added to the interface cannot slip past
// the wrapper's tests.
var methods = []struct {
	name string
	call func(ctx context.Context, s store.Store) error
}{
	{"Save", func(ctx context.Context, s store.Store) error {
		return s.Save(ctx, "obj", []byte("data"), store.SaveOptions{})
	}},
	{"Load", func(ctx context.Context, s store.Store) error {
		b, err := store.LoadAll(ctx, s, "obj", 0, 0)
		if err == nil && string(b) != "data" {
			err = fmt.Errorf("loaded %q", b)
		}
		return err
	}},
	{"Stat", func(ctx context.Context, s store.Store) error {
		_, err := s.Stat(ctx, "obj")
		return err
	}},
	{"List", func(ctx context.Context, s store.Store) error {
		return s.List(ctx, "", func(store.Info) error { return nil })
	}},
	{"Remove", func(ctx context.Context, s store.Store) error {
		return s.Remove(ctx, "obj")
	}},
}

func TestMethodsCovered(t *testing.T) {
	want := storetest.WrapperMethods()
	got := []string{"Invalidate"} // TestForwardsInvalidate
	for _, m := range methods {
		got = append(got, m.name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("test table covers %q, a wrapper must implement %q", got, want)
	}
}

// TestEveryMethodRetries checks that the wrapper overrides all five
// methods: each retries a transient failure and gives up at once on a
// permanent one.
func TestEveryMethodRetries(t *testing.T) {
	tests := []struct {
		err       error
		wantCalls int
		wantErr   error
	}{
		{errTransient, 2, nil},
		{fmt.Errorf("wrapped: %w", io.ErrUnexpectedEOF), 2, nil},
		{store.ErrPermanent, 1, store.ErrPermanent},
		{store.ErrNotFound, 1, store.ErrNotFound},
	}
	for _, m := range methods {
		for _, tt := range tests {
			f := &fake{fail: func(method string, call int) error {
				if call == 1 {
					return tt.err
				}
				return nil
			}}
			err := m.call(t.Context(), retry.New(f, retry.Options{Sleep: noSleep}))
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("%s after %v: error = %v, want %v", m.name, tt.err, err, tt.wantErr)
			}
			if got := f.count(m.name); got != tt.wantCalls {
				t.Errorf("%s after %v: %d calls, want %d", m.name, tt.err, got, tt.wantCalls)
			}
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errTransient, true},
		{faulty.ErrInjected, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("x: %w", store.ErrNotFound), false},
		{store.ErrExists, false},
		{store.ErrPrecondition, false},
		{store.ErrInvalidRange, false},
		{store.ErrInvalidName, false},
		{fmt.Errorf("bad credentials: %w", store.ErrPermanent), false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
	}
	for _, tt := range tests {
		if got := retry.Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestGivesUp(t *testing.T) {
	f := &fake{fail: func(string, int) error { return errTransient }}
	var logged atomic.Int64
	s := retry.New(f, retry.Options{MaxAttempts: 3, Sleep: noSleep, Logf: func(string, ...any) { logged.Add(1) }})
	err := s.Remove(t.Context(), "obj")
	if !errors.Is(err, errTransient) || f.count("Remove") != 3 {
		t.Errorf("Remove = %v after %d calls, want errTransient after 3", err, f.count("Remove"))
	}
	if logged.Load() != 2 {
		t.Errorf("logged %d retries, want 2", logged.Load())
	}
}

func TestBackoff(t *testing.T) {
	const base, limit = 10 * time.Millisecond, 80 * time.Millisecond
	var waits []time.Duration
	f := &fake{fail: func(string, int) error { return errTransient }}
	s := retry.New(f, retry.Options{MaxAttempts: 9, BaseDelay: base, MaxDelay: limit,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }})
	_ = s.Remove(t.Context(), "obj")
	if len(waits) != 8 {
		t.Fatalf("%d waits, want 8", len(waits))
	}
	for i, d := range waits {
		if most := min(limit, base<<i); d < 0 || d >= most {
			t.Errorf("wait %d = %v, want in [0, %v)", i, d, most)
		}
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, m := range methods {
		f := &fake{}
		if err := m.call(ctx, retry.New(f, retry.Options{Sleep: noSleep})); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", m.name, err)
		}
		if n := f.count(m.name); n != 0 {
			t.Errorf("%s with a cancelled context reached the inner store %d times", m.name, n)
		}
	}
	// Cancelled while waiting to retry: no further attempt.
	ctx, cancel = context.WithCancel(t.Context())
	f := &fake{fail: func(string, int) error { return errTransient }}
	s := retry.New(f, retry.Options{Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	err := s.Save(ctx, "obj", []byte("x"), store.SaveOptions{})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) || f.count("Save") != 1 {
		t.Errorf("Save cancelled during backoff = %v after %d calls, want both errors after 1", err, f.count("Save"))
	}
}

func TestLoadRetriesFailedRead(t *testing.T) {
	m := mem.New()
	data := bytes.Repeat([]byte("0123456789"), 10000)
	if err := m.Save(t.Context(), "obj", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int64
	fs := faulty.New(m, faulty.Options{Inject: func(method faulty.Method, _ string) faulty.Kind {
		if method == faulty.Load && loads.Add(1) == 1 {
			return faulty.TruncateRead
		}
		return faulty.None
	}})
	s := retry.New(fs, retry.Options{Sleep: noSleep})
	var fnCalls int
	err := s.Load(t.Context(), "obj", 0, 0, func(r io.Reader) error {
		fnCalls++
		b, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(b, data) {
			err = errors.New("other bytes")
		}
		return err
	})
	if err != nil || fnCalls != 2 || fs.Injected().TruncateRead != 1 {
		t.Errorf("Load = %v with %d fn calls and %+v, want success after 2 calls and 1 truncated read", err, fnCalls, fs.Injected())
	}
}

func TestLoadFnErrorNotRetried(t *testing.T) {
	m := mem.New()
	if err := m.Save(t.Context(), "obj", []byte("data"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	c := counting.New(m)
	errBad := errors.New("checksum mismatch") // transient by class, but fn's own
	err := retry.New(c, retry.Options{Sleep: noSleep}).Load(t.Context(), "obj", 0, 0, func(r io.Reader) error {
		if _, err := io.ReadAll(r); err != nil {
			return err
		}
		return errBad
	})
	if !errors.Is(err, errBad) || c.Stats().Gets != 1 {
		t.Errorf("Load = %v after %d GETs, want errBad after 1", err, c.Stats().Gets)
	}
}

func TestListResumes(t *testing.T) {
	f := &fake{names: []string{"a", "b", "c", "d"}}
	f.fail = func(method string, call int) error { return nil }
	// The first listing fails after delivering two names.
	first := true
	s := retry.New(listFailer{f, &first}, retry.Options{Sleep: noSleep})
	var got []string
	err := s.List(t.Context(), "", func(fi store.Info) error {
		got = append(got, fi.Name)
		return nil
	})
	if err != nil || !slices.Equal(got, f.names) {
		t.Errorf("List = %q, %v; want each of %q once", got, err, f.names)
	}
	// fn's error ends the listing without a retry.
	errStop := errors.New("stop")
	calls := 0
	err = retry.New(f, retry.Options{Sleep: noSleep}).List(t.Context(), "", func(store.Info) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("List with failing fn = %v after %d calls, want errStop after 1", err, calls)
	}
}

// listFailer makes the first List of its fake fail after two names.
type listFailer struct {
	*fake
	first *bool
}

func (l listFailer) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if !*l.first {
		return l.fake.List(ctx, prefix, fn)
	}
	*l.first = false
	for _, name := range l.names[:2] {
		if err := fn(store.Info{Name: name}); err != nil {
			return err
		}
	}
	return errTransient
}

// TestAmbiguous: a conditional Save whose first attempt was applied but
// reported as failed comes back as ErrExists or ErrPrecondition, marked
// ErrAmbiguous, never as success and never hidden.
func TestAmbiguous(t *testing.T) {
	tests := []struct {
		name    string
		opts    func(etag string) store.SaveOptions
		wantErr error
	}{
		{"IfNoneMatch", func(string) store.SaveOptions { return store.SaveOptions{IfNoneMatch: true} }, store.ErrExists},
		{"IfMatch", func(etag string) store.SaveOptions { return store.SaveOptions{IfMatch: etag} }, store.ErrPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mem.New()
			var etag string
			if tt.wantErr == store.ErrPrecondition {
				if err := m.Save(t.Context(), "obj", []byte("old"), store.SaveOptions{}); err != nil {
					t.Fatal(err)
				}
				fi, _ := m.Stat(t.Context(), "obj")
				etag = fi.ETag
			}
			var saves atomic.Int64
			fs := faulty.New(m, faulty.Options{Inject: func(method faulty.Method, _ string) faulty.Kind {
				if method == faulty.Save && saves.Add(1) == 1 {
					return faulty.FailAfter
				}
				return faulty.None
			}})
			err := retry.New(fs, retry.Options{Sleep: noSleep}).Save(t.Context(), "obj", []byte("new"), tt.opts(etag))
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, retry.ErrAmbiguous) {
				t.Errorf("Save = %v, want %v marked ErrAmbiguous", err, tt.wantErr)
			}
			if b, _ := store.LoadAll(t.Context(), m, "obj", 0, 0); string(b) != "new" {
				t.Errorf("content = %q, want the first attempt's %q", b, "new")
			}
		})
	}
}

// TestSuiteOverFaults runs the conformance suite through retries over a
// store that fails one call in five before applying it, delays or
// truncates reads: the retries must hide every such fault. Faults after
// applying are left out: they make conditional saves ambiguous (see
// TestAmbiguous), which the suite rightly rejects.
func TestSuiteOverFaults(t *testing.T) {
	var injected atomic.Int64
	seed := uint64(0)
	storetest.Run(t, func(t *testing.T) store.Store {
		seed++
		fs := faulty.New(mem.New(), faulty.Options{
			Rate:     0.2,
			Seed:     seed,
			Kinds:    []faulty.Kind{faulty.FailBefore, faulty.Delay, faulty.TruncateRead},
			MaxDelay: time.Millisecond,
		})
		t.Cleanup(func() {
			c := fs.Injected()
			injected.Add(c.FailBefore + c.Delay + c.TruncateRead)
		})
		return retry.New(fs, retry.Options{MaxAttempts: 30, Sleep: noSleep})
	})
	if injected.Load() < 100 {
		t.Errorf("only %d faults injected; the test is not testing much", injected.Load())
	}
}

func TestForwardsInvalidate(t *testing.T) {
	storetest.CheckForwardsInvalidate(t, func(inner store.Store) store.Store {
		return retry.New(inner, retry.Options{Sleep: noSleep})
	})
}
