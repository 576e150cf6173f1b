package manifest

import (
	"fmt"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

// benchTree returns a directory of n entries shaped like a package folder:
// mostly small files of one chunk, some larger ones, subdirectories and
// symlinks, a few xattrs and hard links.
func benchTree(n int) *Tree {
	t := &Tree{Nodes: make([]Node, 0, n)}
	for i := range n {
		nd := Node{Name: fmt.Sprintf("entry-%05d.js", i), Mode: 0o644, UID: 1000, GID: 1000,
			MtimeNs: 1_700_000_000_000_000_000 + int64(i)*1_000_003}
		switch {
		case i%20 == 0:
			nd.Type, nd.Mode, nd.Subtree = TypeDir, 0o755, chunk.Hash(fmt.Appendf(nil, "dir %d", i))
		case i%50 == 1:
			nd.Type, nd.Mode, nd.Target = TypeSymlink, 0o777, fmt.Sprintf("../lib/entry-%05d.js", i)
		default:
			nd.Type = TypeFile
			chunks := 1 + i%7/6*3 // every 7th file: 4 chunks
			nd.Size = uint64(1000 + i*37)
			for c := range chunks {
				nd.Content = append(nd.Content, chunk.Hash(fmt.Appendf(nil, "chunk %d/%d", i, c)))
			}
			if i%100 == 2 {
				nd.LinkID = uint64(i)
			}
			if i%100 == 3 {
				nd.Xattrs = []Xattr{{Name: "user.mime_type", Value: []byte("text/javascript")}}
			}
		}
		t.Nodes = append(t.Nodes, nd)
	}
	return t
}

func BenchmarkTreeEncode(b *testing.B) {
	t := benchTree(1000)
	enc, err := t.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTreeDecode(b *testing.B) {
	enc, err := benchTree(1000).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTree(enc); err != nil {
			b.Fatal(err)
		}
	}
}
