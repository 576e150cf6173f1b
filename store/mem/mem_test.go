package mem_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
	"github.com/sandsnap/sandsnap/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return mem.New() })
}

func TestClock(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	s := mem.NewWithClock(func() time.Time { return now })
	if err := s.Save(t.Context(), "a", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := s.Save(t.Context(), "b", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want time.Time
	}{{"a", now.Add(-time.Hour)}, {"b", now}} {
		fi, err := s.Stat(t.Context(), tt.name)
		if err != nil || !fi.ModTime.Equal(tt.want) {
			t.Errorf("Stat(%q) ModTime = %v, %v; want %v", tt.name, fi.ModTime, err, tt.want)
		}
	}
}

func TestZeroValue(t *testing.T) {
	var s mem.Store
	if err := s.Save(t.Context(), "a", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := s.Stat(t.Context(), "a"); err != nil || fi.ModTime.IsZero() {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
}

// TestNoAliasing: neither the saved slice nor the loaded bytes share
// memory with the stored object.
func TestNoAliasing(t *testing.T) {
	s := mem.New()
	data := []byte("abc")
	if err := s.Save(t.Context(), "a", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	got, err := store.LoadAll(t.Context(), s, "a", 0, 0)
	if err != nil || string(got) != "abc" {
		t.Fatalf("Load = %q, %v; want abc", got, err)
	}
	got[1] = 'Y'
	if again, _ := store.LoadAll(t.Context(), s, "a", 0, 0); string(again) != "abc" {
		t.Errorf("Load after changing the loaded bytes = %q, want abc", again)
	}
}

// TestReaderDiesWithLoad: a reader kept past fn fails, as a closed
// network body would.
func TestReaderDiesWithLoad(t *testing.T) {
	s := mem.New()
	if err := s.Save(t.Context(), "a", []byte("abc"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	var kept io.Reader
	if err := s.Load(t.Context(), "a", 0, 0, func(r io.Reader) error { kept = r; return nil }); err != nil {
		t.Fatal(err)
	}
	if n, err := kept.Read(make([]byte, 3)); err == nil {
		t.Errorf("read after Load returned %d bytes and no error", n)
	}
}

// TestStricterNames: beyond the suite, mem rejects empty elements.
func TestStricterNames(t *testing.T) {
	s := mem.New()
	for _, name := range []string{"a//b", "//", "packs//x"} {
		if err := s.Save(t.Context(), name, nil, store.SaveOptions{}); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Save(%q) error = %v, want ErrInvalidName", name, err)
		}
	}
	for _, name := range []string{"a", "a/b", ".a", "a..b", "a/.b/c", "..."} {
		if err := s.Save(t.Context(), name, nil, store.SaveOptions{}); err != nil {
			t.Errorf("Save(%q): %v", name, err)
		}
	}
}
