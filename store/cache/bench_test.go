package cache_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/mem"
)

const benchPack = 16 << 20 // the data pack target size

// newBenchCache returns a cache holding one 16 MiB pack, "packs/bench".
func newBenchCache(b *testing.B) *cache.Store {
	b.Helper()
	m := mem.New()
	if err := m.Save(b.Context(), "packs/bench", randBytes(1, benchPack), store.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(m, b.TempDir(), cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCachedRangeLoad reads ranges of a cached pack, as a restore
// reads frames, walking the pack with a stride so that reads spread out.
func BenchmarkCachedRangeLoad(b *testing.B) {
	for _, size := range []int64{4 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := newBenchCache(b)
			buf := make([]byte, size)
			read := func(r io.Reader) error {
				_, err := io.ReadFull(r, buf)
				return err
			}
			if err := c.Load(b.Context(), "packs/bench", 0, size, read); err != nil {
				b.Fatal(err) // the fill
			}
			b.SetBytes(size)
			var off int64
			for b.Loop() {
				if err := c.Load(b.Context(), "packs/bench", off, size, read); err != nil {
					b.Fatal(err)
				}
				off = (off + 7*size + 4093) % (benchPack - size)
			}
			if st := c.Stats(); st.Fills != 1 {
				b.Fatalf("stats %+v: the loop did not hit the cache", st)
			}
		})
	}
}

// BenchmarkFill fetches a 16 MiB pack from a mem store into the cache and
// serves a small range of it: the cost of a miss on top of the fetch.
func BenchmarkFill(b *testing.B) {
	c := newBenchCache(b)
	b.SetBytes(benchPack)
	for b.Loop() {
		if err := c.Invalidate(b.Context(), "packs/bench"); err != nil {
			b.Fatal(err)
		}
		if _, err := store.LoadAll(b.Context(), c, "packs/bench", 1000, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
