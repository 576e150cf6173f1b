package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// newTestRepo returns a repository in a fresh memory store.
func newTestRepo(t *testing.T) (*Repository, *mem.Store) {
	t.Helper()
	st := mem.New()
	r, err := Init(context.Background(), st, InitOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// writeTree creates files (path -> content) under dir and gives every
// entry the same fixed mtime, so that equal inputs make equal trees.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var paths []string
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	for i := len(paths) - 1; i > 0; i-- { // children before their directory
		if err := os.Chtimes(paths[i], stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
}

// textFiles returns n compressible files of a few KiB each, and one larger
// random file that the chunker cuts into several chunks.
func textFiles(seed uint64, n int) map[string][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"function", "return", "const", "module", "exports", "require", "this", "value", "=>", "{", "}", ";\n"}
	files := make(map[string][]byte)
	for i := range n {
		var b bytes.Buffer
		for b.Len() < 1000+rng.IntN(6000) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		files[filepath.Join("pkg"+string(rune('a'+i%7)), "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+".js")] = b.Bytes()
	}
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files["big.bin"] = big
	return files
}

// objectBytes sums the sizes of the objects under prefix.
func objectBytes(t *testing.T, st store.Store, prefix string) int64 {
	t.Helper()
	var n int64
	if err := st.List(context.Background(), prefix, func(fi store.Info) error { n += fi.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackupUnchangedAddsNoPackBytes(t *testing.T) {
	ctx := context.Background()
	r, st := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, textFiles(1, 200))

	h1, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs := objectBytes(t, st, packPrefix)
	if packs == 0 || h1.Stats.BlobsNew == 0 {
		t.Fatalf("first backup stored nothing: packs %d bytes, %d new blobs", packs, h1.Stats.BlobsNew)
	}
	// Without a parent every file is read again, but nothing is new.
	h2, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := objectBytes(t, st, packPrefix); got != packs {
		t.Errorf("pack bytes after unchanged backup = %d; want %d", got, packs)
	}
	if h2.Stats.BlobsNew != 0 || h2.Stats.PacksUploaded != 0 {
		t.Errorf("unchanged backup: blobs_new %d, packs %d; want 0, 0", h2.Stats.BlobsNew, h2.Stats.PacksUploaded)
	}
	if h2.Stats.FilesRead != h1.Stats.Files {
		t.Errorf("files read without parent = %d; want %d", h2.Stats.FilesRead, h1.Stats.Files)
	}
	// Same tree, same root: the two snapshots differ only in their stamps.
	s1, _ := r.Snapshot(ctx, h1.ID)
	s2, _ := r.Snapshot(ctx, h2.ID)
	if s1.Tree != s2.Tree {
		t.Errorf("root tree changed between identical backups: %s vs %s", s1.Tree, s2.Tree)
	}

	// With the parent, no file is even read.
	h3, err := r.Backup(ctx, src, BackupOptions{Parent: h2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if h3.Stats.FilesRead != 0 || h3.Stats.BytesRead != 0 || h3.Stats.FilesReused != h1.Stats.Files {
		t.Errorf("backup with parent: read %d files (%d bytes), reused %d; want 0, 0, %d",
			h3.Stats.FilesRead, h3.Stats.BytesRead, h3.Stats.FilesReused, h1.Stats.Files)
	}
	if h3.Parent == nil || *h3.Parent != h2.ID {
		t.Errorf("parent = %v; want %s", h3.Parent, h2.ID)
	}
}

func TestBackupSharedFilesShareChunks(t *testing.T) {
	ctx := context.Background()
	r, st := newTestRepo(t)
	files := textFiles(2, 300)
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, files)
	writeTree(t, b, files)
	extra := bytes.Repeat([]byte("a file only tree b has\n"), 100)
	writeTree(t, b, map[string][]byte{"only-b/readme.md": extra})

	if _, err := r.Backup(ctx, a, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	afterA := objectBytes(t, st, packPrefix)
	hb, err := r.Backup(ctx, b, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	added := objectBytes(t, st, packPrefix) - afterA
	// Tree b adds one small file and changes two trees (root and only-b):
	// a few KiB at most, against megabytes for the shared content.
	if added > 16<<10 {
		t.Errorf("second tree added %d pack bytes; want only its own file and trees (< 16 KiB)", added)
	}
	if hb.Stats.BlobsNew != 3 { // readme.md, the only-b tree, the root tree
		t.Errorf("blobs_new = %d; want 3", hb.Stats.BlobsNew)
	}
}

func TestBackupCompressesSmallFilesTogether(t *testing.T) {
	// Small blobs are compressed together in frames, so a tree of many
	// small similar files costs far less than compressing each file alone
	// and not much more than one stream (the repository also holds each
	// file's ID in a tree and a trailer: incompressible, ~70 bytes a file).
	ctx := context.Background()
	r, st := newTestRepo(t)
	src := t.TempDir()
	files := textFiles(3, 500)
	delete(files, "big.bin")
	writeTree(t, src, files)
	if _, err := r.Backup(ctx, src, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	var plain, perFile int
	for _, data := range files {
		all.Write(data)
		plain += len(data)
		perFile += len(r.enc.EncodeAll(data, nil))
	}
	one := len(r.enc.EncodeAll(all.Bytes(), nil))
	stored := int(objectBytes(t, st, packPrefix))
	overhead := 70 * len(files)
	if stored > perFile || stored > one*11/10+overhead {
		t.Errorf("packs hold %d bytes for %d plain bytes; want less than per-file compression (%d) and within 10%% of one stream (%d) plus %d bytes of IDs",
			stored, plain, perFile, one, overhead)
	}
	t.Logf("plain %d, one stream %d, per file %d, repository packs %d", plain, one, perFile, stored)
}

func TestBackupBadSource(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	file := filepath.Join(t.TempDir(), "plain")
	writeTree(t, filepath.Dir(file), map[string][]byte{"plain": []byte("x")})
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		dir  string
		want error
	}{
		{missing, os.ErrNotExist},
		{file, ErrNotDir},
	} {
		_, err := r.Backup(ctx, tc.dir, BackupOptions{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.dir) {
			t.Errorf("Backup(%s) = %v; want %v naming the path", tc.dir, err, tc.want)
		}
	}
	if _, err := r.Backup(ctx, t.TempDir(), BackupOptions{Name: "bad\nname"}); err == nil {
		t.Error("Backup with a control character in the name succeeded")
	}
	if _, err := r.Backup(ctx, t.TempDir(), BackupOptions{Excludes: []string{"[unclosed"}}); err == nil {
		t.Error("Backup with a malformed exclude pattern succeeded")
	}
}

func TestBackupUnreadableFile(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, textFiles(4, 20))
	bad := filepath.Join(src, "big.bin")
	hook := func(path string, rd io.Reader) io.Reader {
		if path == bad {
			// Fails after the first 1 MiB, in the middle of the file.
			return io.MultiReader(io.LimitReader(rd, 1<<20), iotest.ErrReader(errors.New("input/output error")))
		}
		return rd
	}

	t.Run("fails and commits nothing", func(t *testing.T) {
		r, st := newTestRepo(t)
		r.readHook = hook
		_, err := r.Backup(ctx, src, BackupOptions{})
		if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("Backup = %v; want ErrUnreadable naming %s", err, bad)
		}
		if n := objectBytes(t, st, snapshotPrefix); n != 0 {
			t.Errorf("a failed backup left %d bytes of snapshots", n)
		}
	})
	t.Run("skip-unreadable lists it", func(t *testing.T) {
		r, _ := newTestRepo(t)
		r.readHook = hook
		h, err := r.Backup(ctx, src, BackupOptions{SkipUnreadable: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Stats.Skipped) != 1 || h.Stats.Skipped[0].Path != "big.bin" {
			t.Errorf("skipped = %q; want big.bin", h.Stats.Skipped)
		}
		s, err := r.Snapshot(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		root, err := r.loadTree(ctx, s.Tree)
		if err != nil {
			t.Fatal(err)
		}
		if findNode(root, "big.bin") != nil {
			t.Error("the skipped file is in the snapshot")
		}
		if s.Summary.Skipped != 1 || h.Stats.Files != 20 {
			t.Errorf("summary skipped %d, files %d; want 1, 20", s.Summary.Skipped, h.Stats.Files)
		}
	})
}

func TestBackupFileChangedWhileRead(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"log.txt": bytes.Repeat([]byte("line\n"), 1000)})
	target := filepath.Join(src, "log.txt")
	r.readHook = func(path string, rd io.Reader) io.Reader {
		if path == target {
			f, err := os.OpenFile(target, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.WriteString("appended while the backup read the file\n")
				f.Close()
			}
		}
		return rd
	}
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Stats.Changed) != 1 || h.Stats.Changed[0] != "log.txt" {
		t.Errorf("changed = %q; want [log.txt]", h.Stats.Changed)
	}
}

func TestBackupExcludes(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{
		"keep.js": []byte("1"), "a/keep.js": []byte("2"), "a/cache/x.tmp": []byte("3"),
		"b/y.tmp": []byte("4"), "node_modules/.cache/z": []byte("5"),
	})
	h, err := r.Backup(ctx, src, BackupOptions{Excludes: []string{"*.tmp", "node_modules/.cache"}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Stats.Files != 2 {
		t.Errorf("files = %d; want 2 (keep.js, a/keep.js)", h.Stats.Files)
	}
}

// rootTree returns the root tree ID of snapshot id.
func rootTree(t *testing.T, r *Repository, id chunk.ID) chunk.ID {
	t.Helper()
	s, err := r.Snapshot(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Tree
}

// nodeAt returns the node of rel (slash-separated) in snapshot id.
func nodeAt(t *testing.T, r *Repository, id chunk.ID, rel string) *manifest.Node {
	t.Helper()
	ctx := context.Background()
	tree, err := r.loadTree(ctx, rootTree(t, r, id))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		n := findNode(tree, p)
		if n == nil {
			t.Fatalf("%s is not in the snapshot", rel)
		}
		if i == len(parts)-1 {
			return n
		}
		if tree, err = r.loadTree(ctx, n.Subtree); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}
