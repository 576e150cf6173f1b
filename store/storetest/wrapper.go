package storetest

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// WrapperMethods returns, sorted, the names of the methods a store
// wrapper must implement itself rather than inherit by embedding: those
// of store.Store and of the optional capabilities that wrappers forward
// (store.Invalidator). A wrapper's test compares it with the methods its
// table exercises, so that a method or capability added later cannot slip
// past the wrapper unnoticed.
func WrapperMethods() []string {
	var names []string
	for _, typ := range []reflect.Type{reflect.TypeFor[store.Store](), reflect.TypeFor[store.Invalidator]()} {
		for i := range typ.NumMethod() {
			names = append(names, typ.Method(i).Name)
		}
	}
	slices.Sort(names)
	return names
}

// CheckForwardsInvalidate checks that the store wrap builds around inner
// forwards store.Invalidate to inner, once, with the same name.
func CheckForwardsInvalidate(t *testing.T, wrap func(inner store.Store) store.Store) {
	t.Helper()
	inner := &invalidations{Store: mem.New()}
	s := wrap(inner)
	if _, ok := s.(store.Invalidator); !ok {
		t.Fatalf("%T does not implement store.Invalidator", s)
	}
	if err := store.Invalidate(t.Context(), s, "packs/ab/obj"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	inner.mu.Lock()
	defer inner.mu.Unlock()
	if !slices.Equal(inner.names, []string{"packs/ab/obj"}) {
		t.Errorf("inner store saw Invalidate of %q, want [packs/ab/obj] once", inner.names)
	}
}

// invalidations is a store that records the names it is asked to
// invalidate.
type invalidations struct {
	store.Store
	mu    sync.Mutex // guards names
	names []string
}

func (s *invalidations) Invalidate(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = append(s.names, name)
	return nil
}
