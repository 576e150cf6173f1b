package counting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/storetest"
)

// methods calls each method of store.Store once on the 10-byte object
// "obj" and says what it must count; TestMethodsCovered keeps it complete.
var methods = []struct {
	name string
	call func(ctx context.Context, s store.Store) error
	want counting.Stats
}{
	{"Save", func(ctx context.Context, s store.Store) error {
		return s.Save(ctx, "obj", []byte("0123456"), store.SaveOptions{})
	}, counting.Stats{Puts: 1, BytesUp: 7}},
	{"Load", func(ctx context.Context, s store.Store) error {
		return s.Load(ctx, "obj", 0, 0, func(r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, 4)) // reads 4 of 10
			return err
		})
	}, counting.Stats{Gets: 1, BytesDown: 4}},
	{"Stat", func(ctx context.Context, s store.Store) error {
		_, err := s.Stat(ctx, "obj")
		return err
	}, counting.Stats{Heads: 1}},
	{"List", func(ctx context.Context, s store.Store) error {
		return s.List(ctx, "", func(store.Info) error { return nil })
	}, counting.Stats{Lists: 1}},
	{"Remove", func(ctx context.Context, s store.Store) error {
		return s.Remove(ctx, "obj")
	}, counting.Stats{Deletes: 1}},
	{"Invalidate", func(ctx context.Context, s store.Store) error {
		return store.Invalidate(ctx, s, "obj") // drops a local copy: no request
	}, counting.Stats{}},
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

func newStore(t *testing.T) *counting.Store {
	t.Helper()
	m := mem.New()
	if err := m.Save(t.Context(), "obj", []byte("0123456789"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return counting.New(m)
}

// TestEveryMethodCounts checks that the wrapper overrides all five
// methods, each counting its own request and nothing else.
func TestEveryMethodCounts(t *testing.T) {
	for _, m := range methods {
		s := newStore(t)
		if err := m.call(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if got := s.Stats(); got != m.want {
			t.Errorf("%s counted %+v, want %+v", m.name, got, m.want)
		}
	}
}

// TestFailedCallsCount: a request that fails still costs a request.
func TestFailedCallsCount(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	_, _ = s.Stat(ctx, "missing")
	_ = s.Save(ctx, "obj", []byte("abc"), store.SaveOptions{IfNoneMatch: true})
	_, _ = store.LoadAll(ctx, s, "obj", 5, 100)
	want := counting.Stats{Heads: 1, Puts: 1, BytesUp: 3, Gets: 1}
	if got := s.Stats(); got != want {
		t.Errorf("counted %+v, want %+v", got, want)
	}
}

func TestConcurrent(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("o/%d/%d", g, i)
				if err := s.Save(t.Context(), name, []byte("ab"), store.SaveOptions{}); err != nil {
					t.Error(err)
				}
				if _, err := store.LoadAll(t.Context(), s, name, 0, 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := counting.Stats{Puts: 400, Gets: 400, BytesUp: 800, BytesDown: 800}
	if got := s.Stats(); got != want {
		t.Errorf("counted %+v, want %+v", got, want)
	}
}

func TestStatsArithmetic(t *testing.T) {
	a := counting.Stats{Puts: 1, Gets: 2, Heads: 3, Lists: 4, Deletes: 5, BytesUp: 6, BytesDown: 7}
	b := counting.Stats{Puts: 10, Gets: 20, Heads: 30, Lists: 40, Deletes: 50, BytesUp: 60, BytesDown: 70}
	sum := counting.Stats{Puts: 11, Gets: 22, Heads: 33, Lists: 44, Deletes: 55, BytesUp: 66, BytesDown: 77}
	if got := a.Add(b); got != sum {
		t.Errorf("Add = %+v, want %+v", got, sum)
	}
	if got := sum.Sub(b); got != a {
		t.Errorf("Sub = %+v, want %+v", got, a)
	}
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"puts":1,"gets":2,"heads":3,"lists":4,"deletes":5,"bytes_up":6,"bytes_down":7}`
	if string(js) != want {
		t.Errorf("JSON = %s, want %s", js, want)
	}
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return counting.New(mem.New()) })
}

func TestForwardsInvalidate(t *testing.T) {
	storetest.CheckForwardsInvalidate(t, func(inner store.Store) store.Store { return counting.New(inner) })
}
