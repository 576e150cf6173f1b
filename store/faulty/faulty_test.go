package faulty_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/faulty"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/storetest"
)

// methods calls each method of store.Store once on the object "obj";
// TestMethodsCovered keeps it complete.
var methods = []struct {
	m    faulty.Method
	call func(ctx context.Context, s store.Store) error
	reqs func(counting.Stats) int64 // the inner requests it makes
}{
	{faulty.Save, func(ctx context.Context, s store.Store) error {
		return s.Save(ctx, "obj", []byte("new"), store.SaveOptions{})
	}, func(c counting.Stats) int64 { return c.Puts }},
	{faulty.Load, func(ctx context.Context, s store.Store) error {
		_, err := store.LoadAll(ctx, s, "obj", 0, 0)
		return err
	}, func(c counting.Stats) int64 { return c.Gets }},
	{faulty.Stat, func(ctx context.Context, s store.Store) error {
		_, err := s.Stat(ctx, "obj")
		return err
	}, func(c counting.Stats) int64 { return c.Heads }},
	{faulty.List, func(ctx context.Context, s store.Store) error {
		return s.List(ctx, "", func(store.Info) error { return nil })
	}, func(c counting.Stats) int64 { return c.Lists }},
	{faulty.Remove, func(ctx context.Context, s store.Store) error {
		return s.Remove(ctx, "obj")
	}, func(c counting.Stats) int64 { return c.Deletes }},
}

func TestMethodsCovered(t *testing.T) {
	want := storetest.WrapperMethods()
	got := []string{"Invalidate"} // TestForwardsInvalidate
	for _, m := range methods {
		got = append(got, m.m.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("test table covers %q, a wrapper must implement %q", got, want)
	}
}

// newInner returns a counted mem store holding "obj".
func newInner(t *testing.T) *counting.Store {
	t.Helper()
	m := mem.New()
	if err := m.Save(t.Context(), "obj", []byte("old"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return counting.New(m)
}

// TestEveryMethodFaults checks that the wrapper overrides all five
// methods: each can fail before or after reaching the inner store.
func TestEveryMethodFaults(t *testing.T) {
	tests := []struct {
		kind      faulty.Kind
		wantErr   error
		wantInner int64
	}{
		{faulty.None, nil, 1},
		{faulty.FailBefore, faulty.ErrInjected, 0},
		{faulty.FailAfter, faulty.ErrInjected, 1},
		{faulty.Delay, nil, 1},
	}
	for _, m := range methods {
		for _, tt := range tests {
			inner := newInner(t)
			s := faulty.New(inner, faulty.Options{Inject: func(got faulty.Method, name string) faulty.Kind {
				if got == m.m && (name == "obj" || name == "") {
					return tt.kind
				}
				return faulty.None
			}})
			err := m.call(t.Context(), s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("%s with %s: error = %v, want %v", m.m, tt.kind, err, tt.wantErr)
			}
			if got := m.reqs(inner.Stats()); got != tt.wantInner {
				t.Errorf("%s with %s: %d inner calls, want %d", m.m, tt.kind, got, tt.wantInner)
			}
		}
	}
}

// TestFailAfterApplies: a Save reported as failed has still happened.
func TestFailAfterApplies(t *testing.T) {
	inner := newInner(t)
	s := faulty.New(inner, faulty.Options{Rate: 1, Kinds: []faulty.Kind{faulty.FailAfter}})
	if err := s.Save(t.Context(), "obj", []byte("new"), store.SaveOptions{}); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Save error = %v, want ErrInjected", err)
	}
	if b, err := store.LoadAll(t.Context(), inner, "obj", 0, 0); err != nil || string(b) != "new" {
		t.Errorf("inner content = %q, %v; want %q", b, err, "new")
	}
	// A call that fails anyway keeps its own error.
	if err := s.Save(t.Context(), "", nil, store.SaveOptions{}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("invalid Save error = %v, want ErrInvalidName", err)
	}
	if got := s.Injected().FailAfter; got != 2 {
		t.Errorf("Injected().FailAfter = %d, want 2", got)
	}
}

func TestTruncateRead(t *testing.T) {
	for _, size := range []int{0, 10, 200 << 10} {
		m := mem.New()
		data := bytes.Repeat([]byte{'x'}, size)
		if err := m.Save(t.Context(), "obj", data, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		s := faulty.New(m, faulty.Options{Rate: 1, Kinds: []faulty.Kind{faulty.TruncateRead}})
		b, err := store.LoadAll(t.Context(), s, "obj", 0, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) >= 64<<10 {
			t.Errorf("size %d: Load = %d bytes, %v; want fewer than 64 KiB and io.ErrUnexpectedEOF", size, len(b), err)
		}
		// On other methods it is a failure before the call.
		if _, err := s.Stat(t.Context(), "obj"); !errors.Is(err, faulty.ErrInjected) {
			t.Errorf("Stat error = %v, want ErrInjected", err)
		}
	}
}

// pattern returns which of n Stat calls failed, as a string of 0s and 1s.
func pattern(t *testing.T, opts faulty.Options, n int) string {
	s := faulty.New(newInner(t), opts)
	var b []byte
	for range n {
		if _, err := s.Stat(t.Context(), "obj"); err != nil {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	return string(b)
}

func TestDeterministic(t *testing.T) {
	opts := faulty.Options{Rate: 0.5, Seed: 42, Kinds: []faulty.Kind{faulty.FailBefore}}
	a, b := pattern(t, opts, 200), pattern(t, opts, 200)
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	opts.Seed = 43
	if c := pattern(t, opts, 200); c == a {
		t.Errorf("seeds 42 and 43 gave the same faults")
	}
	if n := bytes.Count([]byte(a), []byte("1")); n < 60 || n > 140 {
		t.Errorf("rate 0.5 failed %d of 200 calls", n)
	}
	if p := pattern(t, faulty.Options{Seed: 1}, 50); p != string(bytes.Repeat([]byte("0"), 50)) {
		t.Errorf("rate 0 injected faults: %s", p)
	}
}

func TestMethodsFilter(t *testing.T) {
	s := faulty.New(newInner(t), faulty.Options{Rate: 1, Methods: []faulty.Method{faulty.Save}, Kinds: []faulty.Kind{faulty.FailBefore}})
	for _, m := range methods {
		err := m.call(t.Context(), s)
		if want := m.m == faulty.Save; errors.Is(err, faulty.ErrInjected) != want {
			t.Errorf("%s error = %v, want a fault: %v", m.m, err, want)
		}
	}
}

func TestCancelledPassesThrough(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := faulty.New(newInner(t), faulty.Options{Rate: 1})
	for _, m := range methods {
		if err := m.call(ctx, s); !errors.Is(err, context.Canceled) || errors.Is(err, faulty.ErrInjected) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled only", m.m, err)
		}
	}
	if got := s.Injected(); got != (faulty.Counts{}) {
		t.Errorf("Injected() = %+v, want none", got)
	}
}

func TestCounts(t *testing.T) {
	var logged []string
	s := faulty.New(newInner(t), faulty.Options{Rate: 1, Seed: 7, Logf: func(format string, args ...any) {
		logged = append(logged, fmt.Sprintf(format, args...))
	}})
	for range 100 {
		_, _ = store.LoadAll(t.Context(), s, "obj", 0, 0)
	}
	c := s.Injected()
	if c.FailBefore+c.FailAfter+c.Delay+c.TruncateRead != 100 || c.FailBefore == 0 || c.FailAfter == 0 || c.Delay == 0 || c.TruncateRead == 0 {
		t.Errorf("Injected() = %+v, want 100 faults of every kind", c)
	}
	if len(logged) != 100 {
		t.Errorf("logged %d faults, want 100", len(logged))
	}
}

// TestSuiteNoFaults: with no faults the wrapper keeps the store contract.
func TestSuiteNoFaults(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return faulty.New(mem.New(), faulty.Options{}) })
}

// TestForwardsInvalidate: Invalidate reaches the inner store, with no
// fault even at a rate of 1.
func TestForwardsInvalidate(t *testing.T) {
	storetest.CheckForwardsInvalidate(t, func(inner store.Store) store.Store {
		return faulty.New(inner, faulty.Options{Rate: 1})
	})
}
