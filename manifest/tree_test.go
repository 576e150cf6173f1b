package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

func TestTreeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		tree *Tree
	}{
		{"empty", &Tree{}},
		{"sample with every type and field", sampleTree()},
		{"empty file", &Tree{Nodes: []Node{{Name: "e", Type: TypeFile, Mode: 0o644}}}},
		{"file", &Tree{Nodes: []Node{{Name: "f", Type: TypeFile, Mode: 0o640, UID: 5, GID: 6, MtimeNs: 123, Size: 10, Content: []chunk.ID{id("x")}}}}},
		{"hard links", &Tree{Nodes: []Node{
			{Name: "a", Type: TypeFile, Size: 1, Content: []chunk.ID{id("h")}, LinkID: math.MaxUint64},
			{Name: "b", Type: TypeFile, Size: 1, Content: []chunk.ID{id("h")}, LinkID: math.MaxUint64},
		}}},
		{"dir", &Tree{Nodes: []Node{{Name: "d", Type: TypeDir, Mode: 0o755, Subtree: id("t")}}}},
		{"symlink", &Tree{Nodes: []Node{{Name: "s", Type: TypeSymlink, Mode: 0o777, Target: strings.Repeat("x", MaxTargetLen)}}}},
		{"fifo", &Tree{Nodes: []Node{{Name: "p", Type: TypeFIFO, Mode: 0o644, MtimeNs: math.MinInt64}}}},
		{"names", &Tree{Nodes: []Node{
			{Name: "\x01", Type: TypeFIFO}, {Name: "\n", Type: TypeFIFO}, {Name: " ", Type: TypeFIFO},
			{Name: "...", Type: TypeFIFO}, {Name: ".a", Type: TypeFIFO}, {Name: "A", Type: TypeFIFO},
			{Name: "a", Type: TypeFIFO}, {Name: "a\\b", Type: TypeFIFO}, {Name: "ab", Type: TypeFIFO},
			{Name: "é", Type: TypeFIFO}, {Name: "\xff", Type: TypeFIFO},
		}}},
		{"xattrs with binary values", &Tree{Nodes: []Node{{Name: "x", Type: TypeDir, Subtree: id("t"), Xattrs: []Xattr{
			{Name: "security.selinux", Value: []byte("system_u:object_r\x00")},
			{Name: "user.big", Value: bytes.Repeat([]byte{0, 0xff}, MaxXattrValueLen/2)},
			{Name: "user.empty"},
			{Name: strings.Repeat("u", MaxXattrNameLen), Value: []byte{0}},
		}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.tree.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if b[0] != Version {
				t.Errorf("first byte = %d; want version %d", b[0], Version)
			}
			got, err := DecodeTree(b)
			if err != nil {
				t.Fatalf("DecodeTree: %v", err)
			}
			want := tt.tree
			if len(want.Nodes) == 0 {
				want = &Tree{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decode(encode(t)) differs:\n got %+v\nwant %+v", got, want)
			}
			b2, err := got.Encode()
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("encode(decode(b)) differs from b")
			}
		})
	}
}

func TestTreeEncodeDeterministic(t *testing.T) {
	a := sampleTree()
	// The same entries built in another order and with empty instead of
	// nil slices must encode identically once sorted.
	b := &Tree{}
	for i := len(a.Nodes) - 1; i >= 0; i-- {
		n := a.Nodes[i]
		if n.Content == nil {
			n.Content = []chunk.ID{}
		}
		if n.Xattrs == nil {
			n.Xattrs = []Xattr{}
		}
		n.Xattrs = append([]Xattr(nil), n.Xattrs...)
		for j, k := 0, len(n.Xattrs)-1; j < k; j, k = j+1, k-1 {
			n.Xattrs[j], n.Xattrs[k] = n.Xattrs[k], n.Xattrs[j]
		}
		b.Nodes = append(b.Nodes, n)
	}
	b.Sort()
	ea, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ea, eb) {
		t.Errorf("equal trees encode differently:\n%x\n%x", ea, eb)
	}
	for i := range a.Nodes {
		if !a.Nodes[i].Equal(&b.Nodes[i]) {
			t.Errorf("node %q: Equal = false for equal nodes", a.Nodes[i].Name)
		}
	}
	ea2, _ := a.Encode()
	if !bytes.Equal(ea, ea2) {
		t.Errorf("two encodings of one tree differ")
	}
}

// TestFormatExample checks the example in FORMAT.md.
func TestFormatExample(t *testing.T) {
	tree := &Tree{Nodes: []Node{{Name: "p", Type: TypeFIFO, Mode: 0o644, MtimeNs: 1}}}
	b, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x01, 0x01, 0x01, 0x70, 0x04, 0xa4, 0x03, 0x00, 0x00, 0x02, 0x00}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding = % x; want % x (FORMAT.md)", b, want)
	}
	empty, _ := (&Tree{}).Encode()
	if !bytes.Equal(empty, []byte{1, 0}) {
		t.Errorf("empty tree = % x; want 01 00 (FORMAT.md)", empty)
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"...", true}, {".hidden", true}, {"with space", true}, {"new\nline", true},
		{"\xff\xfe", true}, {"日本", true}, {strings.Repeat("x", 255), true}, {"a\\b", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"/", false}, {"a\x00", false},
		{strings.Repeat("x", 256), false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidName(%q) = %v; want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v; want ErrBadName", tt.name, err)
		}
	}
}

func TestTreeEncodeRejects(t *testing.T) {
	file := Node{Name: "f", Type: TypeFile}
	with := func(f func(n *Node)) []Node {
		n := file
		f(&n)
		return []Node{n}
	}
	tests := []struct {
		name  string
		nodes []Node
		want  error
	}{
		{"empty name", with(func(n *Node) { n.Name = "" }), ErrBadName},
		{"dot", with(func(n *Node) { n.Name = "." }), ErrBadName},
		{"dotdot", with(func(n *Node) { n.Name = ".." }), ErrBadName},
		{"slash", with(func(n *Node) { n.Name = "a/b" }), ErrBadName},
		{"NUL", with(func(n *Node) { n.Name = "a\x00b" }), ErrBadName},
		{"256 bytes", with(func(n *Node) { n.Name = strings.Repeat("a", 256) }), ErrBadName},
		{"unsorted", []Node{{Name: "b", Type: TypeFIFO}, {Name: "a", Type: TypeFIFO}}, ErrUnsorted},
		{"duplicate", []Node{{Name: "a", Type: TypeFIFO}, {Name: "a", Type: TypeFile}}, ErrUnsorted},
		{"type 0", with(func(n *Node) { n.Type = 0 }), ErrInvalid},
		{"type 5", with(func(n *Node) { n.Type = 5 }), ErrInvalid},
		{"mode with file type bits", with(func(n *Node) { n.Mode = 0o100644 }), ErrInvalid},
		{"file with subtree", with(func(n *Node) { n.Subtree = id("t") }), ErrInvalid},
		{"file with target", with(func(n *Node) { n.Target = "t" }), ErrInvalid},
		{"file with zero chunk", with(func(n *Node) { n.Size = 1; n.Content = []chunk.ID{{}} }), ErrInvalid},
		{"dir without subtree", with(func(n *Node) { n.Type = TypeDir }), ErrInvalid},
		{"dir with size", with(func(n *Node) { n.Type, n.Subtree, n.Size = TypeDir, id("t"), 1 }), ErrInvalid},
		{"dir with content", with(func(n *Node) { n.Type, n.Subtree, n.Content = TypeDir, id("t"), []chunk.ID{id("c")} }), ErrInvalid},
		{"dir with link ID", with(func(n *Node) { n.Type, n.Subtree, n.LinkID = TypeDir, id("t"), 1 }), ErrInvalid},
		{"symlink without target", with(func(n *Node) { n.Type = TypeSymlink }), ErrInvalid},
		{"symlink target with NUL", with(func(n *Node) { n.Type, n.Target = TypeSymlink, "a\x00" }), ErrInvalid},
		{"symlink target too long", with(func(n *Node) { n.Type, n.Target = TypeSymlink, strings.Repeat("a", MaxTargetLen+1) }), ErrInvalid},
		{"symlink with size", with(func(n *Node) { n.Type, n.Target, n.Size = TypeSymlink, "t", 1 }), ErrInvalid},
		{"fifo with link ID", with(func(n *Node) { n.Type, n.LinkID = TypeFIFO, 3 }), ErrInvalid},
		{"fifo with target", with(func(n *Node) { n.Type, n.Target = TypeFIFO, "t" }), ErrInvalid},
		{"xattr empty name", with(func(n *Node) { n.Xattrs = []Xattr{{Name: ""}} }), ErrInvalid},
		{"xattr NUL name", with(func(n *Node) { n.Xattrs = []Xattr{{Name: "a\x00"}} }), ErrInvalid},
		{"xattr long name", with(func(n *Node) { n.Xattrs = []Xattr{{Name: strings.Repeat("a", 256)}} }), ErrInvalid},
		{"xattr long value", with(func(n *Node) { n.Xattrs = []Xattr{{Name: "a", Value: make([]byte, MaxXattrValueLen+1)}} }), ErrInvalid},
		{"xattrs unsorted", with(func(n *Node) { n.Xattrs = []Xattr{{Name: "b"}, {Name: "a"}} }), ErrUnsorted},
		{"xattrs duplicate", with(func(n *Node) { n.Xattrs = []Xattr{{Name: "a"}, {Name: "a"}} }), ErrUnsorted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Tree{Nodes: tt.nodes}).Encode()
			if !errors.Is(err, tt.want) {
				t.Errorf("Encode error = %v; want %v", err, tt.want)
			}
		})
	}
	if _, err := (*Tree)(nil).Encode(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Tree Encode error = %v; want ErrInvalid", err)
	}
}

func TestDecodeTreeRejects(t *testing.T) {
	v := byte(Version)
	fifo := rawFIFO
	tests := []struct {
		name string
		data []byte
		want error // besides ErrCorrupt
	}{
		{"empty input", nil, nil},
		{"version 0", raw(byte(0), 0), ErrVersion},
		{"version 2", raw(byte(2), 0), ErrVersion},
		{"no count", raw(v), nil},
		{"trailing byte", raw(v, 0, byte(0)), nil},
		{"trailing byte after node", raw(v, 1, fifo("a"), byte(0)), nil},
		{"count larger than nodes", raw(v, 2, fifo("a")), nil},
		{"absurd count", raw(v, uint64(1)<<62, fifo("a")), nil},
		{"max count", raw(v, uint64(math.MaxUint64)), nil},
		{"non-minimal count", raw(v, []byte{0x81, 0x00}, fifo("a")), nil},
		{"non-minimal zero", raw(v, []byte{0x80, 0x00}), nil},
		{"varint overflow", raw(v, bytes.Repeat([]byte{0xff}, 10), []byte{0x01}), nil},
		{"non-minimal mode", raw(v, 1, "a", byte(TypeFIFO), []byte{0x80, 0x00}, 0, 0, int64(0), 0), nil},
		{"mode too big", raw(v, 1, "a", byte(TypeFIFO), 0o10000, 0, 0, int64(0), 0), ErrInvalid},
		{"uid over 32 bits", raw(v, 1, "a", byte(TypeFIFO), 0, 1<<32, 0, int64(0), 0), nil},
		{"gid over 32 bits", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 1<<32, int64(0), 0), nil},
		{"type 0", raw(v, 1, "a", byte(0), 0, 0, 0, int64(0), 0), ErrInvalid},
		{"type 5", raw(v, 1, "a", byte(5), 0, 0, 0, int64(0), 0), ErrInvalid},
		{"empty name", raw(v, 1, fifo("")), ErrBadName},
		{"dot", raw(v, 1, fifo(".")), ErrBadName},
		{"dotdot", raw(v, 1, fifo("..")), ErrBadName},
		{"slash", raw(v, 1, fifo("a/b")), ErrBadName},
		{"NUL", raw(v, 1, fifo("a\x00")), ErrBadName},
		{"256-byte name", raw(v, 1, fifo(strings.Repeat("a", 256))), ErrBadName},
		{"name longer than input", raw(v, 1, []byte{0x7f}, "a"), nil},
		{"unsorted", raw(v, 2, fifo("b"), fifo("a")), ErrUnsorted},
		{"duplicate", raw(v, 2, fifo("a"), fifo("a")), ErrUnsorted},
		{"dir zero subtree", raw(v, 1, "d", byte(TypeDir), 0, 0, 0, int64(0), chunk.ID{}, 0), ErrInvalid},
		{"dir truncated subtree", raw(v, 1, "d", byte(TypeDir), 0, 0, 0, int64(0), make([]byte, 20)), nil},
		{"symlink empty target", raw(v, 1, "s", byte(TypeSymlink), 0, 0, 0, int64(0), "", 0), ErrInvalid},
		{"symlink NUL target", raw(v, 1, "s", byte(TypeSymlink), 0, 0, 0, int64(0), "a\x00", 0), ErrInvalid},
		{"symlink long target", raw(v, 1, "s", byte(TypeSymlink), 0, 0, 0, int64(0), strings.Repeat("a", MaxTargetLen+1), 0), nil},
		{"file zero chunk", raw(v, 1, "f", byte(TypeFile), 0, 0, 0, int64(0), 1, 1, chunk.ID{}, 0, 0), ErrInvalid},
		{"file absurd chunk count", raw(v, 1, "f", byte(TypeFile), 0, 0, 0, int64(0), 1, 1<<40, id("c"), 0, 0), nil},
		{"file chunks truncated", raw(v, 1, "f", byte(TypeFile), 0, 0, 0, int64(0), 1, 2, id("c"), 0, 0), nil},
		{"absurd xattr count", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 1<<40, "x", ""), nil},
		{"xattr value past end", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 1, "x", 100), nil},
		{"xattr empty name", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 1, "", "", byte(0)), ErrInvalid},
		{"xattr count counting empty names", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 1, "", ""), nil},
		{"xattrs unsorted", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 2, "y", "", "x", ""), ErrUnsorted},
		{"xattrs duplicate", raw(v, 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 2, "x", "", "x", ""), ErrUnsorted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTree(tt.data)
			if err == nil {
				t.Fatalf("DecodeTree accepted % x as %+v", tt.data, got)
			}
			if tt.want != ErrVersion && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v; want ErrCorrupt", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v; want %v", err, tt.want)
			}
		})
	}
}

// TestDecodeTreeTruncated checks that every proper prefix of a valid tree
// is refused.
func TestDecodeTreeTruncated(t *testing.T) {
	b, err := sampleTree().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		if _, err := DecodeTree(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d/%d bytes: error %v; want ErrCorrupt", i, len(b), err)
		}
	}
}

// TestDecodeTreeErrorNamesEntry checks that errors say which entry is bad.
func TestDecodeTreeErrorNamesEntry(t *testing.T) {
	_, err := DecodeTree(raw(byte(Version), 2, rawFIFO("good"), rawFIFO("ba/d")))
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), `"ba/d"`) {
		t.Errorf("error %v; want it to name entry 1 \"ba/d\"", err)
	}
}

// TestDecodeTreeAllocations bounds what DecodeTree allocates relative to
// its input, for hostile inputs (counts that promise more than the input
// holds) and for the densest valid one (many tiny FIFO nodes).
func TestDecodeTreeAllocations(t *testing.T) {
	dense := &Tree{}
	for i := range 2000 {
		dense.Nodes = append(dense.Nodes, Node{Name: string(rune('A'+i/64)) + string(rune('A'+i%64)), Type: TypeFIFO})
	}
	dense.Sort()
	denseBytes, err := dense.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"absurd count", raw(byte(Version), uint64(1)<<40, rawFIFO("a"))},
		{"absurd chunk count", raw(byte(Version), 1, "f", byte(TypeFile), 0, 0, 0, int64(0), 1, 1<<40, id("c"))},
		{"absurd xattr count", raw(byte(Version), 1, "a", byte(TypeFIFO), 0, 0, 0, int64(0), 1<<40, "x", "")},
		{"dense FIFOs", denseBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range 10 {
				DecodeTree(tt.data)
			}
			runtime.ReadMemStats(&after)
			perCall := (after.TotalAlloc - before.TotalAlloc) / 10
			// A Node is about 150 bytes and takes at least 8 encoded bytes.
			if limit := uint64(32*len(tt.data) + 4096); perCall > limit {
				t.Errorf("DecodeTree of %d bytes allocated %d bytes; limit %d", len(tt.data), perCall, limit)
			}
		})
	}
}

// TestDecodeTreeFewAllocations checks that names, targets and chunk IDs
// are cut from shared backing arrays instead of allocated per node; only
// xattrs (rare) cost allocations per node.
func TestDecodeTreeFewAllocations(t *testing.T) {
	tree := benchTree(1000)
	b, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	limit := 4.0
	for _, n := range tree.Nodes {
		if len(n.Xattrs) > 0 {
			limit += 1 + float64(len(n.Xattrs))
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := DecodeTree(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > limit {
		t.Errorf("DecodeTree of a 1000-node tree made %.0f allocations; want at most %.0f", allocs, limit)
	}
}

// TestDecodedContentIsolated checks that appending to one file's Content
// cannot overwrite another's, though they share a backing array.
func TestDecodedContentIsolated(t *testing.T) {
	tree := &Tree{Nodes: []Node{
		{Name: "a", Type: TypeFile, Size: 1, Content: []chunk.ID{id("a")}},
		{Name: "b", Type: TypeFile, Size: 1, Content: []chunk.ID{id("b")}},
	}}
	b, _ := tree.Encode()
	got, err := DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got.Nodes[0].Content, id("x"))
	if got.Nodes[1].Content[0] != id("b") {
		t.Errorf("append to a's Content overwrote b's")
	}
}

func TestTreeFindAndSort(t *testing.T) {
	tree := &Tree{Nodes: []Node{
		{Name: "b", Type: TypeFIFO}, {Name: "a", Type: TypeFIFO, Xattrs: []Xattr{{Name: "z"}, {Name: "y"}}},
		{Name: "\xff", Type: TypeFIFO}, {Name: "B", Type: TypeFIFO}, {Name: "ab", Type: TypeFIFO},
	}}
	tree.Sort()
	var names []string
	for _, n := range tree.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"B", "a", "ab", "b", "\xff"}; !reflect.DeepEqual(names, want) {
		t.Errorf("sorted names = %q; want %q", names, want)
	}
	if n, _ := tree.Find("a"); n.Xattrs[0].Name != "y" {
		t.Errorf("xattrs not sorted: %+v", n.Xattrs)
	}
	for _, name := range names {
		n, ok := tree.Find(name)
		if !ok || n.Name != name {
			t.Errorf("Find(%q) = %v, %v", name, n, ok)
		}
	}
	for _, name := range []string{"", "A", "aa", "c", "\xfe"} {
		if n, ok := tree.Find(name); ok {
			t.Errorf("Find(%q) = %v; want not found", name, n)
		}
	}
	if _, err := tree.Encode(); err != nil {
		t.Errorf("Encode after Sort: %v", err)
	}
}

func TestNodeTypeString(t *testing.T) {
	for typ, want := range map[NodeType]string{TypeFile: "file", TypeDir: "dir", TypeSymlink: "symlink", TypeFIFO: "fifo", 9: "type(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("NodeType(%d).String() = %q; want %q", uint8(typ), got, want)
		}
	}
}

// TestEncodedLenExact checks the size Encode allocates against what it
// writes, so that the buffer never grows and never wastes space.
func TestEncodedLenExact(t *testing.T) {
	for _, tree := range []*Tree{{}, sampleTree(), benchTree(300)} {
		b, err := tree.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != cap(b) {
			t.Errorf("tree of %d nodes: encoded %d bytes into a buffer of %d", len(tree.Nodes), len(b), cap(b))
		}
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, math.MaxInt64, math.MinInt64} {
		if got, want := uvarintLen(zigzag(v)), len(binary.AppendVarint(nil, v)); got != want {
			t.Errorf("varint length of %d = %d; want %d", v, got, want)
		}
	}
}
