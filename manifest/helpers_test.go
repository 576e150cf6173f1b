package manifest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

// errNotFound is what memTrees.load returns for an unknown ID.
var errNotFound = errors.New("test: tree not found")

// id returns a distinct non-zero ID for a test label.
func id(label string) chunk.ID { return chunk.Hash([]byte(label)) }

// raw builds tree bytes by hand, for inputs that Encode would refuse:
// byte is one byte, int a uvarint, int64 a zigzag varint, string a
// length-prefixed string, []byte raw bytes, chunk.ID its 32 bytes, and
// []any is flattened.
func raw(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b = append(b, v)
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case uint64:
			b = binary.AppendUvarint(b, v)
		case int64:
			b = binary.AppendVarint(b, v)
		case string:
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		case chunk.ID:
			b = append(b, v[:]...)
		case []any:
			b = append(b, raw(v...)...)
		default:
			panic(fmt.Sprintf("raw: unsupported %T", p))
		}
	}
	return b
}

// rawFIFO is the encoding of a FIFO node called name with no xattrs.
func rawFIFO(name string) []any {
	return []any{name, byte(TypeFIFO), 0o644, 0, 0, int64(1), 0}
}

// sampleTree covers every node type and every field, and the awkward
// names; the golden file holds its encoding.
func sampleTree() *Tree {
	t := &Tree{Nodes: []Node{
		{Name: "\n", Type: TypeFIFO, Mode: 0o600, UID: 1000, GID: 1000, MtimeNs: -1},
		{Name: " with space", Type: TypeFile, Mode: 0o644, MtimeNs: 0},
		{Name: "a.txt", Type: TypeFile, Mode: 0o4755, UID: 1, GID: 2, MtimeNs: 1_700_000_000_123_456_789,
			Size: 3 << 20, Content: []chunk.ID{id("c1"), id("c2"), id("c1")}, LinkID: 7,
			Xattrs: []Xattr{{Name: "user.bin", Value: []byte{0, 1, 0xff, '\n'}}, {Name: "user.empty"}, {Name: "user.mime", Value: []byte("text/plain")}}},
		{Name: "b-hardlink", Type: TypeFile, Mode: 0o755, UID: 1, GID: 2, MtimeNs: 1_700_000_000_123_456_789,
			Size: 3 << 20, Content: []chunk.ID{id("c1"), id("c2"), id("c1")}, LinkID: 7},
		{Name: "dir", Type: TypeDir, Mode: 0o1777, UID: 0xffffffff, GID: 0xfffffffe, MtimeNs: 1 << 62, Subtree: id("subtree"),
			Xattrs: []Xattr{{Name: "user.x", Value: []byte("y")}}},
		{Name: "fifo", Type: TypeFIFO, Mode: 0o7777, MtimeNs: -1 << 63, Xattrs: []Xattr{{Name: "user.a", Value: []byte("1")}}},
		{Name: "link", Type: TypeSymlink, Mode: 0o777, MtimeNs: 42, Target: "../target with\nnewline\xff"},
		{Name: strings.Repeat("n", MaxNameLen), Type: TypeFile, Mode: 0o644, Size: 1, Content: []chunk.ID{id("one")}},
		{Name: "Ünïcödé 日本語", Type: TypeSymlink, Mode: 0o777, Target: "/abs/path"},
		{Name: "\xff\xfe invalid utf-8", Type: TypeFile, Mode: 0o644, Size: 1 << 40, Content: []chunk.ID{id("big")}},
	}}
	t.Sort()
	return t
}

// memTrees is an in-memory tree store for Walk and Diff tests that counts
// loads per ID.
type memTrees struct {
	blobs map[chunk.ID][]byte
	loads map[chunk.ID]int
}

func newMemTrees() *memTrees {
	return &memTrees{blobs: map[chunk.ID][]byte{}, loads: map[chunk.ID]int{}}
}

// put encodes t, stores it and returns its ID.
func (m *memTrees) put(tb testing.TB, t *Tree) chunk.ID {
	tb.Helper()
	b, err := t.Encode()
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	id := chunk.Hash(b)
	m.blobs[id] = b
	return id
}

func (m *memTrees) load(_ context.Context, id chunk.ID) (*Tree, error) {
	m.loads[id]++
	b, ok := m.blobs[id]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id.Str(), errNotFound)
	}
	return DecodeTree(b)
}

func (m *memTrees) totalLoads() int {
	n := 0
	for _, c := range m.loads {
		n += c
	}
	return n
}

// dir is a directory spec for build: a value is a string (a file with
// that content), a dir (a subdirectory) or a Node (taken as is, Name set
// from the key).
type dir map[string]any

// build stores the tree of d and its subtrees bottom-up and returns the
// root ID.
func (m *memTrees) build(tb testing.TB, d dir) chunk.ID {
	tb.Helper()
	t := &Tree{}
	for name, v := range d {
		var n Node
		switch v := v.(type) {
		case string:
			n = Node{Type: TypeFile, Mode: 0o644, Size: uint64(len(v))}
			if v != "" {
				n.Content = []chunk.ID{chunk.Hash([]byte(v))}
			}
		case dir:
			n = Node{Type: TypeDir, Mode: 0o755, Subtree: m.build(tb, v)}
		case Node:
			n = v
		default:
			tb.Fatalf("build: unsupported %T", v)
		}
		n.Name = name
		t.Nodes = append(t.Nodes, n)
	}
	t.Sort()
	return m.put(tb, t)
}
