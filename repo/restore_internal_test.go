package repo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
)

func TestRestoreCheckTree(t *testing.T) {
	file := func(name string) manifest.Node { return manifest.Node{Name: name, Type: manifest.TypeFile} }
	tests := []struct {
		names []string
		ok    bool
	}{
		{[]string{"a", "b", "c"}, true},
		{[]string{"..", "a"}, false},
		{[]string{"."}, false},
		{[]string{"a/b"}, false},
		{[]string{"/etc"}, false},
		{[]string{""}, false},
		{[]string{"a\x00b"}, false},
		{[]string{strings.Repeat("x", 256)}, false},
		{[]string{"b", "a"}, false}, // unsorted
		{[]string{"a", "a"}, false}, // duplicate: two entries, one path
	}
	for _, tt := range tests {
		var tr manifest.Tree
		for _, n := range tt.names {
			tr.Nodes = append(tr.Nodes, file(n))
		}
		err := checkTree(&tr)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrUnsafePath)) {
			t.Errorf("checkTree(%q) = %v; want ok=%v or ErrUnsafePath", tt.names, err, tt.ok)
		}
	}
}

func TestRestoreWriteSparse(t *testing.T) {
	const k4 = 4 << 10
	data := func(parts ...any) []byte {
		var b []byte
		for i := 0; i < len(parts); i += 2 {
			b = append(b, bytes.Repeat([]byte{byte(parts[i].(int))}, parts[i+1].(int))...)
		}
		return b
	}
	tests := []struct {
		name      string
		off       int64
		data      []byte
		maxBlocks int64 // 4 KiB blocks allocated at most
	}{
		{"all zero", 0, data(0, 256<<10), 0},
		{"all data", 0, data(7, 64<<10), 16},
		{"zero middle", 0, data(1, k4, 0, 128<<10, 2, k4), 2},
		{"unaligned", 1000, data(0, 3096, 3, 10, 0, 64<<10, 4, 1), 2},
		{"unaligned zero edges", 4095, data(0, 1, 5, k4, 0, 1), 1},
		{"empty", 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			size := tt.off + int64(len(tt.data)) + 1<<20
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			if err := writeSparse(int(f.Fd()), tt.data, tt.off); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tt.data))
			if _, err := f.ReadAt(got, tt.off); err != nil && len(got) > 0 {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("read back differs from what was written")
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if blocks := st.Blocks * 512 / k4; blocks > tt.maxBlocks {
				t.Errorf("%d blocks allocated; want at most %d", blocks, tt.maxBlocks)
			}
		})
	}
}

func TestRestorePlanDataRanges(t *testing.T) {
	p1, p2 := chunk.Hash([]byte("pack 1")), chunk.Hash([]byte("pack 2"))
	blob := func(s string) chunk.ID { return chunk.Hash([]byte(s)) }
	frame := func(off, n uint32) pack.Frame { return pack.Frame{Offset: off, Length: n, RawLength: n} }
	entries := []pack.Entry{
		{ID: blob("a"), Type: pack.DataBlob, Pack: p1, Frame: frame(0, 300), Offset: 0, Length: 100},
		{ID: blob("b"), Type: pack.DataBlob, Pack: p1, Frame: frame(0, 300), Offset: 100, Length: 200},
		{ID: blob("c"), Type: pack.DataBlob, Pack: p1, Frame: frame(300+maxRangeGap, 50), Offset: 0, Length: 50},
		{ID: blob("d"), Type: pack.DataBlob, Pack: p1, Frame: frame(400+2*maxRangeGap, 10), Offset: 0, Length: 10},
		{ID: blob("e"), Type: pack.DataBlob, Pack: p2, Frame: frame(0, 40), Offset: 0, Length: 40},
		{ID: blob("unneeded"), Type: pack.DataBlob, Pack: p2, Frame: frame(40, 40), Offset: 0, Length: 40},
	}
	r := &Repository{idx: newIndex()}
	r.idx.add("", entries)
	x := &restorer{r: r}
	d := &rdir{rel: "dir"}
	mk := func(name string, write bool, ids ...string) *rfile {
		n := &manifest.Node{Name: name, Type: manifest.TypeFile}
		for _, s := range ids {
			n.Content = append(n.Content, blob(s))
		}
		return &rfile{dir: d, node: n, write: write, fd: -1}
	}
	f1, f2 := mk("f1", true, "a", "b", "a", "c"), mk("f2", true, "e", "d")
	x.files = []*rfile{f1, f2, mk("kept", false, "unneeded")}
	ranges, err := x.planData()
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		pack     chunk.ID
		off, end uint32
		frames   int
	}
	wants := []want{
		{p1, 0, 300 + maxRangeGap + 50, 2},
		{p1, 400 + 2*maxRangeGap, 410 + 2*maxRangeGap, 1},
		{p2, 0, 40, 1},
	}
	if bytes.Compare(p2[:], p1[:]) < 0 {
		wants = append(wants[2:], wants[:2]...)
	}
	if len(ranges) != len(wants) {
		t.Fatalf("%d ranges; want %d", len(ranges), len(wants))
	}
	for i, w := range wants {
		rg := ranges[i]
		if rg.pack != w.pack || rg.off != w.off || rg.end != w.end || len(rg.frames) != w.frames {
			t.Errorf("range %d = %s [%d, %d) %d frames; want %s [%d, %d) %d frames",
				i, rg.pack.Str(), rg.off, rg.end, len(rg.frames), w.pack.Str(), w.off, w.end, w.frames)
		}
	}
	// "a" goes twice into f1, at 0 and at 300.
	var a *blobNeed
	for _, rg := range ranges {
		for _, fn := range rg.frames {
			for _, b := range fn.blobs {
				if b.e.ID == blob("a") {
					a = b
				}
			}
		}
	}
	if a == nil || len(a.targets) != 2 || a.targets[0] != (target{f1, 0}) || a.targets[1] != (target{f1, 300}) {
		t.Errorf("targets of blob a = %+v; want f1 at 0 and 300", a)
	}

	x.files = append(x.files, mk("lost", true, "nowhere"))
	if _, err := x.planData(); !errors.Is(err, ErrBlobNotFound) || !strings.Contains(err.Error(), "dir/lost") {
		t.Errorf("planData with a missing blob: %v; want ErrBlobNotFound naming dir/lost", err)
	}
}

// TestRestoreOpenBeneath runs both ways of opening below the target: openat2 and
// the walk one element at a time.
func TestRestoreOpenBeneath(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a/b/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range [][2]string{{outside, "a/out"}, {"b", "a/inner"}, {"b/f", "a/flink"}} {
		if err := os.Symlink(link[0], filepath.Join(root, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, walk := range []bool{false, true} {
		x := &restorer{root: fd}
		x.noOpenat2.Store(walk)
		for _, tt := range []struct {
			rel string
			ok  bool
		}{
			{"", true},
			{"a", true},
			{"a/b/f", true},
			{"a/out/secret", false},
			{"a/inner/f", false},
			{"a/flink", false},
		} {
			flags := unix.O_RDONLY
			got, err := x.openBeneath(tt.rel, flags, 0)
			if err == nil {
				unix.Close(got)
			}
			if (err == nil) != tt.ok {
				t.Errorf("walk=%v: openBeneath(%q) error %v; want ok=%v", walk, tt.rel, err, tt.ok)
			}
		}
	}
}
