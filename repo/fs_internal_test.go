package repo

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/mem"
)

// backupFS writes files into a new folder, backs it up into r and opens
// the snapshot's FS until the test ends.
func backupFS(t *testing.T, r *Repository, files map[string][]byte) *SnapshotFS {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, files)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := r.FS(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// fsOpenFile opens name in fsys as the FS's regular-file type.
func fsOpenFile(t *testing.T, fsys *SnapshotFS, name string) *file {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fl, ok := f.(*file)
	if !ok {
		t.Fatalf("Open(%s) returned %T", name, f)
	}
	return fl
}

// TestFSReadAtRandom: ReadAt at random offsets and lengths, many starting
// at or just around chunk and frame boundaries, some past the end, from
// several goroutines at once, returns exactly the source's bytes and
// io.EOF exactly when the read is cut short by the end.
func TestFSReadAtRandom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Small chunks and frames: chunks under 8 KiB share frames, larger
	// ones have frames of their own, so a read crosses both kinds of
	// boundary.
	params, err := chunk.NewParams()
	if err != nil {
		t.Fatal(err)
	}
	params.MinSize, params.MaxSize, params.AverageBits = 2<<10, 32<<10, 12
	r, err := Init(ctx, mem.New(), InitOptions{Chunker: &params, FrameSize: 16 << 10}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := map[string][]byte{
		"random":    random(700 << 10),
		"holes":     append(append(random(20<<10), make([]byte, 300<<10)...), random(5000)...),
		"text":      bytes.Repeat([]byte("a line of text that compresses well\n"), 9000),
		"small":     []byte("tiny"),
		"empty":     nil,
		"one-chunk": random(1500),
	}
	fsys := backupFS(t, r, files)
	var chunkEdges, frameEdges, sharedFrames int
	for name, want := range files {
		fl := fsOpenFile(t, fsys, name)
		edges := fl.offs
		for i := 1; i < len(fl.offs)-1; i++ {
			a, _ := r.idx.lookup(fl.ent.node.Content[i-1])
			b, _ := r.idx.lookup(fl.ent.node.Content[i])
			chunkEdges++
			if a.Pack != b.Pack || a.Frame != b.Frame {
				frameEdges++
			} else {
				sharedFrames++
			}
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 3))
				for range 300 {
					off := rng.Int64N(int64(len(want)) + 100)
					if len(edges) > 0 && rng.IntN(2) == 0 {
						off = max(0, edges[rng.IntN(len(edges))]+rng.Int64N(9)-4)
					}
					checkReadAt(t, fl, want, off, rng.IntN(40<<10))
				}
			})
		}
		wg.Wait()
	}
	if chunkEdges < 20 || frameEdges < 5 || sharedFrames < 5 {
		t.Fatalf("%d chunk boundaries, %d of them between frames, %d inside one: the source does not exercise both", chunkEdges, frameEdges, sharedFrames)
	}
}

// checkReadAt reads n bytes at off and compares them with want's.
func checkReadAt(t *testing.T, r io.ReaderAt, want []byte, off int64, n int) {
	p := make([]byte, n)
	got, err := r.ReadAt(p, off)
	end := min(off+int64(n), int64(len(want)))
	wantN := int(max(0, end-off))
	switch {
	case got != wantN:
		t.Errorf("ReadAt(%d bytes at %d) of %d = %d bytes, %v; want %d", n, off, len(want), got, err, wantN)
	case wantN < n && err != io.EOF:
		t.Errorf("ReadAt(%d bytes at %d) of %d: %v; want io.EOF", n, off, len(want), err)
	case wantN == n && err != nil:
		t.Errorf("ReadAt(%d bytes at %d) of %d: %v", n, off, len(want), err)
	case got > 0 && !bytes.Equal(p[:got], want[off:off+int64(got)]):
		t.Errorf("ReadAt(%d bytes at %d): bytes differ from the source", n, off)
	}
}

// TestFSReadOneFrame: reading 4 KiB in the middle of a 64 MiB file costs
// one range GET of no more than the frame that holds it, counted below
// the repository; the next read inside the same chunk costs nothing.
func TestFSReadOneFrame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := counting.New(mem.New())
	r, err := Init(ctx, cs, InitOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	fl := fsOpenFile(t, backupFS(t, r, map[string][]byte{"big": data}), "big")
	const off = 40<<20 + 12345
	i := sort.Search(len(fl.offs)-1, func(i int) bool { return fl.offs[i+1] > off })
	e, _ := r.idx.lookup(fl.ent.node.Content[i])
	if off+4096 > fl.offs[i+1] {
		t.Fatalf("the 4 KiB at %d cross a chunk boundary; pick another offset", off)
	}

	before := cs.Stats()
	checkReadAt(t, fl, data, off, 4096)
	got := cs.Stats().Sub(before)
	if got.Gets != 1 || got.BytesDown > int64(e.Frame.Length) {
		t.Errorf("a 4 KiB read made %d GETs of %d bytes; want 1 GET of at most its frame's %d bytes", got.Gets, got.BytesDown, e.Frame.Length)
	}
	t.Logf("4 KiB of a 64 MiB file: %d GET, %d bytes (a %d-byte frame, chunk %d of %d)", got.Gets, got.BytesDown, e.Frame.Length, i, len(fl.offs)-1)

	before = cs.Stats()
	checkReadAt(t, fl, data, fl.offs[i]+100, 4096)
	if got := cs.Stats().Sub(before); got.Gets != 0 {
		t.Errorf("a second read in the same chunk made %d GETs; want 0", got.Gets)
	}
}

// TestFSLease: an open FS holds a lease, so gc does not delete the packs
// it reads, even when it repacks them and runs again while the FS is open;
// after Close the next gc deletes them and no lease is left.
func TestFSLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	base := mem.NewWithClock(clock.now)
	r := newGCRepo(t, base)
	h, src := backupRepackable(t, r)
	clock.advance(time.Hour)
	reader, err := Open(ctx, base, Options{LeaseTTL: testLeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := reader.FS(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := runGC(t, r, GCOptions{RepackThreshold: 1})
	second := runGC(t, r, GCOptions{RepackThreshold: 1})
	if first.PacksRepacked == 0 || second.PacksDeleted != 0 || second.PacksWaiting == 0 {
		t.Errorf("gc runs while the FS is open: %+v, %+v; want a repack, then nothing deleted while its lease lives", first, second)
	}
	for rel, want := range readFiles(t, src) {
		got, err := fs.ReadFile(fsys, filepath.ToSlash(rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("after gc, read %s through the FS: %d bytes, %v", rel, len(got), err)
		}
	}
	fsys.Close()
	if rep := runGC(t, r, GCOptions{RepackThreshold: 1}); rep.PacksDeleted == 0 {
		t.Errorf("gc after Close deleted nothing")
	}
	for name := range objectNames(t, base) {
		if strings.HasPrefix(name, leasePrefix) {
			t.Errorf("%s left behind", name)
		}
	}
}

// TestFSCaches: the frame and tree caches stay within their bounds, keep
// the newest entry even when it alone is over the bound, and drop the
// least recently used first.
func TestFSCaches(t *testing.T) {
	c := newLRU[int, string](10)
	c.add(1, "a", 4)
	c.add(2, "b", 4)
	c.get(1) // 2 is now the least recently used
	c.add(3, "c", 4)
	if _, ok := c.get(2); ok || c.len() != 2 {
		t.Errorf("after overflow: 2 still cached or %d entries; want 1 and 3", c.len())
	}
	c.add(4, "huge", 100)
	if v, ok := c.get(4); !ok || v != "huge" || c.len() != 1 {
		t.Errorf("an entry over the bound: %q, %v, %d entries; want it alone", v, ok, c.len())
	}
}
