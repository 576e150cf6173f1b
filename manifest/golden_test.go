package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/manifest")

const goldenDir = "../testdata/manifest"

// checkGolden compares got with the golden file name byte for byte, or
// rewrites the file with -update.
func checkGolden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (create it with: go test ./manifest -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding differs from %s:\n got %x\nwant %x\n"+
			"The manifest format changed: every tree or snapshot ID changes with it, which defeats deduplication "+
			"against existing repositories. A format change needs a Version bump (and a decoder for the old version); "+
			"only then regenerate with: go test ./manifest -update", path, got, want)
	}
	return want
}

func TestGoldenTree(t *testing.T) {
	tree := sampleTree()
	got, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := checkGolden(t, "tree.golden", got)
	// The stored bytes must still decode to the same tree.
	dec, err := DecodeTree(want)
	if err != nil {
		t.Fatalf("decode golden tree: %v", err)
	}
	if !reflect.DeepEqual(dec, tree) {
		t.Errorf("golden tree decodes to\n%+v\nwant\n%+v", dec, tree)
	}
}

func TestGoldenSnapshot(t *testing.T) {
	s := sampleSnapshot()
	got, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := checkGolden(t, "snapshot.golden.json", got)
	dec, err := DecodeSnapshot(want)
	if err != nil {
		t.Fatalf("decode golden snapshot: %v", err)
	}
	if !reflect.DeepEqual(dec, s) {
		t.Errorf("golden snapshot decodes to\n%+v\nwant\n%+v", dec, s)
	}
}
