package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/mem"
)

// genByte is byte i of the objects that genStore makes up.
func genByte(i int64) byte { return byte(i*31 + i>>9 + i>>17) }

// genReader reads the made-up object's bytes [pos, end).
type genReader struct{ pos, end int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.pos >= g.end {
		return 0, io.EOF
	}
	n := min(int64(len(p)), g.end-g.pos, 64<<10)
	for i := range n {
		p[i] = genByte(g.pos + i)
	}
	g.pos += n
	return int(n), nil
}

// genStore serves objects of size bytes made up on the fly, so that no
// copy of them sits in memory; other methods come from the embedded store.
type genStore struct {
	store.Store
	size int64
}

func (g genStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	end := offset + length
	if length == 0 {
		end = g.size
	}
	if offset < 0 || length < 0 || end > g.size {
		return fmt.Errorf("gen %q: %w", name, store.ErrInvalidRange)
	}
	return fn(&genReader{pos: offset, end: end})
}

// genSum is the SHA-256 of the made-up object of size bytes.
func genSum(size int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, &genReader{end: size})
	return h.Sum(nil)
}

// TestFillStreams fills a 64 MiB object through VerifyReader and checks
// that the fill allocates far less than the object (it streams to the
// disk) and that ranges are served right from the cached file.
func TestFillStreams(t *testing.T) {
	const size = 64 << 20
	want := genSum(size)
	errBad := errors.New("hash mismatch")
	verified := 0
	c, err := cache.New(genStore{Store: mem.New(), size: size}, t.TempDir(), cache.Options{
		Verify: func(string, []byte) error { return errors.New("Verify must not be used when VerifyReader is set") },
		VerifyReader: func(name string, r io.Reader) error {
			verified++
			h := sha256.New()
			if _, err := io.Copy(h, r); err != nil {
				return err
			}
			if !bytes.Equal(h.Sum(nil), want) {
				return errBad
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = c.Load(t.Context(), "packs/big", size-10, 10, func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("first Load: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("a fill of %d bytes allocated %d bytes; want it streamed", size, alloc)
	}
	tests := []struct{ offset, length int64 }{
		{0, 100}, {size - 1, 1}, {12345678, 3 << 20}, {size/2 - 7, 0}, {1 << 20, 1 << 20},
	}
	for _, tt := range tests {
		got, err := store.LoadAll(t.Context(), c, "packs/big", tt.offset, tt.length)
		end := tt.offset + tt.length
		if tt.length == 0 {
			end = size
		}
		if err != nil || int64(len(got)) != end-tt.offset {
			t.Errorf("Load(%d, %d) = %d bytes, %v; want %d", tt.offset, tt.length, len(got), err, end-tt.offset)
			continue
		}
		for i, b := range got {
			if b != genByte(tt.offset+int64(i)) {
				t.Errorf("Load(%d, %d): byte %d differs", tt.offset, tt.length, i)
				break
			}
		}
	}
	if st := c.Stats(); st.Fills != 1 || st.BytesFilled != size || st.Misses != 1 || verified != 1 {
		t.Errorf("stats %+v after %d verifications; want one verified fill of %d bytes, then hits", st, verified, size)
	}
}

// TestVerifyReaderFails: an object that VerifyReader rejects is not cached
// and its Loads fail with VerifyReader's error.
func TestVerifyReaderFails(t *testing.T) {
	errBad := errors.New("hash mismatch")
	f := newFixture(t, cache.Options{VerifyReader: func(name string, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if string(b) == "rotten" {
			return errBad
		}
		return nil
	}})
	f.seed(t, map[string][]byte{"packs/bad": []byte("rotten"), "packs/good": []byte("fine")})
	tests := []struct {
		name    string
		wantErr error
		want    string
	}{
		{"packs/bad", errBad, ""},
		{"packs/bad", errBad, ""},
		{"packs/good", nil, "fine"},
		{"packs/good", nil, "fine"},
	}
	for i, tt := range tests {
		got, err := store.LoadAll(t.Context(), f.c, tt.name, 0, 0)
		if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
			t.Errorf("Load #%d of %s = %q, %v; want %q, %v", i+1, tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	if files, _ := cachedFiles(t, f.dir); len(files) != 1 || f.inner.Stats().Gets != 3 {
		t.Errorf("%d cached files after %d inner Loads; want only the good object, after 3", len(files), f.inner.Stats().Gets)
	}
}
