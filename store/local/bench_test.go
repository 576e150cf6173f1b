package local_test

import (
	"io"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/local"
)

const benchSize = 4 << 20

func benchStore(b *testing.B) *local.Store {
	s, err := local.Create(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSave measures a durable (fsynced) save of a 4 MiB object.
func BenchmarkSave(b *testing.B) {
	s := benchStore(b)
	data := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if err := s.Save(b.Context(), "packs/ab/obj", data, store.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures reading a 4 MiB object whole.
func BenchmarkLoad(b *testing.B) {
	s := benchStore(b)
	if err := s.Save(b.Context(), "packs/ab/obj", make([]byte, benchSize), store.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(benchSize)
	for b.Loop() {
		err := s.Load(b.Context(), "packs/ab/obj", 0, 0, func(r io.Reader) error {
			_, err := io.CopyBuffer(io.Discard, r, buf)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
