package repo

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// extent is a run of data in a sparse file; the rest reads as zeros.
type extent struct {
	off  int64
	data []byte
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// writeSparse creates a file of size bytes with holes everywhere but the
// extents, and skips the test where the filesystem allocates the holes.
func writeSparseFile(t *testing.T, p string, size int64, exts []extent) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range exts {
		if _, err := f.WriteAt(e.data, e.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if size > 0 && st.Blocks*512 >= size {
		t.Skipf("the filesystem of %s allocated the holes (%d blocks for %d bytes): no sparse files here", p, st.Blocks, size)
	}
}

// sparseContent is the byte stream a sparse file reads as, served from
// memory, zeros included.
func sparseContent(size int64, exts []extent) io.Reader {
	var parts []io.Reader
	var off int64
	for _, e := range exts {
		parts = append(parts, io.LimitReader(zeros{}, e.off-off), bytes.NewReader(e.data))
		off = e.off + int64(len(e.data))
	}
	parts = append(parts, io.LimitReader(zeros{}, size-off))
	return io.MultiReader(parts...)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// chunkIDs cuts rd as the repository's chunker does and hashes every
// chunk: the content a backup must find, computed without it.
func chunkIDs(t *testing.T, r *Repository, rd io.Reader) []chunk.ID {
	t.Helper()
	ch := chunk.NewChunker(r.cfg.Chunker)
	ch.Reset(rd)
	var ids []chunk.ID
	for {
		c, err := ch.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, chunk.Hash(c.Data))
	}
}

// fileContent returns the chunk IDs the snapshot id holds for its file rel.
func fileContent(t *testing.T, r *Repository, id chunk.ID, rel string) []chunk.ID {
	t.Helper()
	return nodeAt(t, r, id, rel).Content
}

// readChars returns the bytes this process has read with read(2) and
// pread(2) so far (rchar in /proc/self/io).
func readChars(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io to count the bytes read: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no rchar in /proc/self/io: %q", data)
	return 0
}

func TestBackupSparseFileReadsOnlyItsData(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	const size = 1 << 30
	exts := []extent{ // 4 MiB of data in a 1 GiB file, at unaligned offsets too
		{0, randomBytes(1, 1<<20)},
		{300<<20 + 12345, randomBytes(2, 1<<20)},
		{700 << 20, randomBytes(3, 1<<20+777)},
		{size - 1<<20, randomBytes(4, 1<<20)},
	}
	writeSparseFile(t, filepath.Join(src, "disk.img"), size, exts)
	want := chunkIDs(t, r, sparseContent(size, exts))

	before := readChars(t)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	read := readChars(t) - before
	got := fileContent(t, r, h.ID, "disk.img")
	if !equalIDs(got, want) {
		t.Fatalf("the sparse file's content is %d chunks that differ from the %d of the same bytes read densely", len(got), len(want))
	}
	if h.Stats.BytesRead != size {
		t.Errorf("bytes read = %d; want the file's size %d", h.Stats.BytesRead, size)
	}
	// The data is 4 MiB; the kernel handed over little more, not 1 GiB.
	if read > 16<<20 {
		t.Errorf("the backup read %d bytes with read(2) for a %d-byte file holding 4 MiB of data", read, size)
	}
	t.Logf("%d chunks; %d bytes read from the kernel", len(got), read)
}

func equalIDs(a, b []chunk.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type sparseShape struct {
	name string
	size int64
	exts []extent
}

// sparseShapes are files with holes in every place, their sizes and
// offsets in units of u bytes.
func sparseShapes(u int64) []sparseShape {
	var many []extent // a 4 KiB block every 64 KiB
	for off := int64(0); off < 6*u; off += max(u/16, 8<<10) {
		many = append(many, extent{off, randomBytes(uint64(off), 4<<10)})
	}
	return []sparseShape{
		{"hole then data", 6 * u, []extent{{5 * u, randomBytes(1, int(u))}}},
		{"data then hole", 6 * u, []extent{{0, randomBytes(2, int(u))}}},
		{"only a hole", 6 * u, nil},
		{"data at unaligned offsets", 6*u + 3, []extent{{u + 100, randomBytes(3, 5000)}, {3*u - 7, randomBytes(4, int(u)+11)}}},
		{"many small extents", 6 * u, many},
		{"zeros written as data", 4 * u, []extent{{u, make([]byte, u)}, {3 * u, randomBytes(5, 100)}}},
	}
}

// TestBackupSparseShapes backs up sparse files and the same bytes written
// densely: their contents (chunk IDs) must be equal.
func TestBackupSparseShapes(t *testing.T) {
	for _, tc := range sparseShapes(1 << 20) {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, _ := newTestRepo(t)
			sparse, dense := t.TempDir(), t.TempDir()
			writeSparseFile(t, filepath.Join(sparse, "f"), tc.size, tc.exts)
			content, _ := io.ReadAll(sparseContent(tc.size, tc.exts))
			if err := os.WriteFile(filepath.Join(dense, "f"), content, 0o644); err != nil {
				t.Fatal(err)
			}
			hs, err := r.Backup(ctx, sparse, BackupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			hd, err := r.Backup(ctx, dense, BackupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s, d := fileContent(t, r, hs.ID, "f"), fileContent(t, r, hd.ID, "f"); !equalIDs(s, d) {
				t.Errorf("sparse content %d chunks, dense %d: they differ", len(s), len(d))
			}
		})
	}
}

// TestFileReaderSparse checks that the reader serves exactly a sparse
// file's bytes to short and odd reads (iotest.TestReader reads some in
// pieces of a byte or two, so the files are small).
func TestFileReaderSparse(t *testing.T) {
	for _, tc := range sparseShapes(64 << 10) {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			writeSparseFile(t, p, tc.size, tc.exts)
			content, _ := io.ReadAll(sparseContent(tc.size, tc.exts))
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if err := iotest.TestReader(newFileReader(int(f.Fd()), &st), content); err != nil {
				t.Error(err)
			}
		})
	}
}
