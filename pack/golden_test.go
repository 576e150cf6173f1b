package pack

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/pack")

// The golden files pin the byte format. They are written with the fixed
// encoder of newTestEncoder (zstd.SpeedDefault, one goroutine, no CRC) and
// goldenOptions from goldenBlobs, which uses a generator that no library
// upgrade can change.
const (
	goldenPack  = "../testdata/pack/golden.pack"
	goldenIndex = "../testdata/pack/golden.index"
)

var goldenOptions = Options{FrameSize: 16 << 10, LargeBlob: 8 << 10}

// goldenBlobs is a data pack's worth of every kind of blob: small text
// sharing frames, an empty blob, a large compressible blob, large and small
// incompressible blobs, tiny blobs and (though repo keeps them apart) a
// tree blob.
func goldenBlobs() []blob {
	r := &splitmix{s: 2026}
	var bs []blob
	for i := range 30 {
		bs = append(bs, blob{DataBlob, jsText(r, 100+r.intn(4000))})
		switch i {
		case 3:
			bs = append(bs, blob{DataBlob, []byte{}})
		case 8:
			bs = append(bs, blob{DataBlob, jsText(r, 40<<10)})
		case 12:
			bs = append(bs, blob{DataBlob, randomBytes(r, 10<<10)})
		case 17:
			bs = append(bs, blob{DataBlob, randomBytes(r, 500)})
		case 21:
			bs = append(bs, blob{TreeBlob, jsText(r, 1500)})
		case 25:
			bs = append(bs, blob{DataBlob, []byte("a")}, blob{DataBlob, jsText(r, 20)}, blob{DataBlob, jsText(r, 49)})
		}
	}
	return bs
}

// goldenTreeBlobs fill a second, tree-only pack for the golden index.
func goldenTreeBlobs() []blob {
	r := &splitmix{s: 7}
	var bs []blob
	for range 5 {
		bs = append(bs, blob{TreeBlob, jsText(r, 200+r.intn(3000))})
	}
	return bs
}

const goldenAdvice = "the pack or index byte format changed (or the zstd library now compresses differently). " +
	"If the format changed on purpose, bump pack.Version, describe the change in pack/FORMAT.md and keep a reader for " +
	"the old version; only then regenerate with `go test ./pack -update`. Packs already in repositories never change."

// compareGolden compares got with the golden file at path, or rewrites it
// with -update.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(got))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (create it with `go test ./pack -update`)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: %d bytes written, golden file has %d, first difference at byte %d: %s", path, len(got), len(want), i, goldenAdvice)
	}
}

func goldenPacks(t *testing.T) (data, trees Packed) {
	enc := newTestEncoder(t)
	return writePack(t, enc, goldenOptions, goldenBlobs()), writePack(t, enc, goldenOptions, goldenTreeBlobs())
}

func TestGoldenWrite(t *testing.T) {
	data, trees := goldenPacks(t)
	compareGolden(t, goldenPack, data.Data)
	index, err := EncodeIndex(append(slices.Clone(data.Entries), trees.Entries...))
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, goldenIndex, index)
}

// TestGoldenRead reads the committed files, so a reader change that breaks
// packs already written fails here even if it also changed the writer.
func TestGoldenRead(t *testing.T) {
	packBytes, err := os.ReadFile(goldenPack)
	if err != nil {
		t.Fatal(err)
	}
	// The golden pack is named by its hash, like any pack.
	id := chunk.Hash(packBytes)
	entries, got, err := readPack(newTestDecoder(t), id, packBytes)
	if err != nil {
		t.Fatalf("read %s: %v: %s", goldenPack, err, goldenAdvice)
	}
	blobs := goldenBlobs()
	if len(got) != len(blobs) {
		t.Fatalf("%s holds %d blobs; want %d", goldenPack, len(got), len(blobs))
	}
	kinds := map[string]bool{}
	for i, b := range blobs {
		if !bytes.Equal(got[i], b.data) || entries[i].ID != b.id() || entries[i].Type != b.t {
			t.Errorf("blob %d of %s differs from the golden input", i, goldenPack)
		}
		f := entries[i].Frame
		kinds[map[bool]string{true: "compressed", false: "raw"}[f.Compressed]] = true
		if f.RawLength == entries[i].Length && f.RawLength > 0 {
			kinds["own frame"] = true
		}
	}
	for _, k := range []string{"compressed", "raw", "own frame"} {
		if !kinds[k] {
			t.Errorf("golden pack has no %s frame", k)
		}
	}

	indexBytes, err := os.ReadFile(goldenIndex)
	if err != nil {
		t.Fatal(err)
	}
	index, err := DecodeIndex(indexBytes)
	if err != nil {
		t.Fatalf("decode %s: %v: %s", goldenIndex, err, goldenAdvice)
	}
	var fromPack []Entry
	for _, e := range index {
		if e.Pack == id {
			fromPack = append(fromPack, e)
		}
	}
	slices.SortFunc(entries, func(a, b Entry) int { return compareEntries(&a, &b) })
	if !slices.Equal(fromPack, entries) {
		t.Errorf("%s lists %d entries of %s, differing from its trailer's %d", goldenIndex, len(fromPack), id.Str(), len(entries))
	}
	if n := len(index) - len(fromPack); n != len(goldenTreeBlobs()) {
		t.Errorf("%s lists %d entries of other packs; want %d", goldenIndex, n, len(goldenTreeBlobs()))
	}
}
