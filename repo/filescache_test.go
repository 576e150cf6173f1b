package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/store/mem"
)

// newCachedRepo returns a repository in a memory store with a host cache
// folder, as the CLI opens it.
func newCachedRepo(t *testing.T) *Repository {
	t.Helper()
	r, err := Init(context.Background(), mem.New(), InitOptions{}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestForkBackupTrustsFilesCache(t *testing.T) {
	ctx := context.Background()
	r := newCachedRepo(t)
	src := t.TempDir()
	writeTree(t, src, textFiles(5, 100))
	base, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fork := filepath.Join(t.TempDir(), "fork")
	if _, err := r.Restore(ctx, base.ID, fork, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}

	// The restore wrote the fork's files cache, so --parent auto finds the
	// base and nothing is read or uploaded.
	h, err := r.Backup(ctx, fork, BackupOptions{AutoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if h.Parent == nil || *h.Parent != base.ID {
		t.Fatalf("auto parent = %v; want %s", h.Parent, base.ID)
	}
	if h.Stats.FilesRead != 0 || h.Stats.BytesRead != 0 || h.Stats.PacksUploaded != 0 {
		t.Errorf("no-change fork backup read %d files (%d bytes), uploaded %d packs; want 0",
			h.Stats.FilesRead, h.Stats.BytesRead, h.Stats.PacksUploaded)
	}

	// An edit hidden behind a restored mtime (same size, mtime put back)
	// still changes the ctime, which the files cache records.
	p := filepath.Join(fork, "big.bin")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	data[100] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	h2, err := r.Backup(ctx, fork, BackupOptions{AutoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if *h2.Parent != h.ID {
		t.Errorf("auto parent after a backup = %s; want the fork's last backup %s", h2.Parent, h.ID)
	}
	if h2.Stats.FilesRead != 1 || h2.Stats.BlobsNew == 0 {
		t.Errorf("hidden edit: read %d files, %d new blobs; want 1 file read and new blobs", h2.Stats.FilesRead, h2.Stats.BlobsNew)
	}
	check := filepath.Join(t.TempDir(), "check")
	if _, err := r.Restore(ctx, h2.ID, check, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(check, "big.bin")); !bytes.Equal(got, data) {
		t.Error("the snapshot after a hidden edit does not hold the edit")
	}

	// --reread reads everything, cache or not.
	h3, err := r.Backup(ctx, fork, BackupOptions{AutoParent: true, Reread: true})
	if err != nil {
		t.Fatal(err)
	}
	if h3.Stats.FilesRead != base.Stats.Files {
		t.Errorf("reread: read %d files; want %d", h3.Stats.FilesRead, base.Stats.Files)
	}
}

func TestRestoreInPlaceTrustsFilesCache(t *testing.T) {
	ctx := context.Background()
	r := newCachedRepo(t)
	src := t.TempDir()
	writeTree(t, src, textFiles(6, 50))
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Restore(ctx, h.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := r.Restore(ctx, h.ID, dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.FilesUnchanged != h.Stats.Files || st.FilesChecked != 0 || st.FilesWritten != 0 {
		t.Errorf("second restore: unchanged %d, checked %d, written %d; want %d, 0, 0",
			st.FilesUnchanged, st.FilesChecked, st.FilesWritten, h.Stats.Files)
	}

	// Without the cache the same restore reads every file to compare
	// (and, with no record of the earlier restore, needs Delete).
	r.opts.CacheDir = ""
	st, err = r.Restore(ctx, h.ID, dst, RestoreOptions{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.FilesChecked != h.Stats.Files || st.FilesWritten != 0 {
		t.Errorf("restore without cache: checked %d, written %d; want %d, 0", st.FilesChecked, st.FilesWritten, h.Stats.Files)
	}
}

func TestFilesCacheEncoding(t *testing.T) {
	fc := newFilesCache(0)
	fc.Snapshot = chunk.Hash([]byte("snap"))
	fc.Files["a/b.js"] = fileStat{Ino: 7, Size: 10, MtimeNs: -5, CtimeNs: time.Now().UnixNano(), Mode: 0o4755, Digest: chunk.Hash([]byte("x"))}
	fc.Files["\n odd"] = fileStat{Ino: 1 << 40}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	encodeFilesCache(w, fc, "repo", "/dir")
	w.Flush()
	got, err := decodeFilesCache(buf.Bytes(), "repo", "/dir")
	if err != nil {
		t.Fatal(err)
	}
	if got.Snapshot != fc.Snapshot || len(got.Files) != 2 || got.Files["a/b.js"] != fc.Files["a/b.js"] || got.Files["\n odd"] != fc.Files["\n odd"] {
		t.Errorf("round trip = %+v; want %+v", got, fc)
	}
	for name, tc := range map[string]struct {
		data      []byte
		repo, dir string
	}{
		"other repo":  {buf.Bytes(), "other", "/dir"},
		"other dir":   {buf.Bytes(), "repo", "/elsewhere"},
		"truncated":   {buf.Bytes()[:buf.Len()-1], "repo", "/dir"},
		"trailing":    {append(bytes.Clone(buf.Bytes()), 0), "repo", "/dir"},
		"not a cache": {[]byte("hello world"), "repo", "/dir"},
		"empty":       {nil, "repo", "/dir"},
	} {
		if _, err := decodeFilesCache(tc.data, tc.repo, tc.dir); !errors.Is(err, errFilesCache) {
			t.Errorf("%s: decode = %v; want errFilesCache", name, err)
		}
	}
}
