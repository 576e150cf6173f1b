package repo

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBackupLinkGroupReadOnce: a hard-linked inode with names in several
// directories is read once, and when it changes while it is read (here:
// appended through one of its names as the read starts), every name of
// the snapshot holds the one version that was read, so the snapshot's
// link group agrees and it restores as one inode. Before, each name was
// read on its own: the names read after the change held another content,
// and restore refused the group.
func TestBackupLinkGroupReadOnce(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	data := bytes.Repeat([]byte("hard-linked line\n"), 4096)
	writeTree(t, src, map[string][]byte{"a/log": data, "other": []byte("x")})
	names := []string{"a/log", "b/log", "c/d/log", "z-log"}
	for _, n := range names[1:] {
		mustMkdir(t, filepath.Dir(filepath.Join(src, n)))
		if err := os.Link(filepath.Join(src, "a/log"), filepath.Join(src, n)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	reads := map[string]int{}
	r.readHook = func(path string, rd io.Reader) io.Reader {
		rel, _ := filepath.Rel(src, path)
		mu.Lock()
		reads[rel]++
		first := len(reads) == 1 && reads[rel] == 1
		mu.Unlock()
		if rel != "other" && first {
			f, err := os.OpenFile(filepath.Join(src, "z-log"), os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.WriteString("appended while the backup read the inode\n")
				f.Close()
			}
		}
		return rd
	}
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	linkReads := 0
	for rel, n := range reads {
		if rel != "other" {
			linkReads += n
		}
	}
	if linkReads != 1 {
		t.Errorf("the hard-linked inode was read %d times (%v); want once", linkReads, reads)
	}
	if h.Stats.Files != 5 {
		t.Errorf("files = %d; want 5 (four names and other)", h.Stats.Files)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Restore(ctx, h.ID, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore of the snapshot: %v", err)
	}
	var first unix.Stat_t
	var content []byte
	for i, n := range names {
		var st unix.Stat_t
		noErr(t, unix.Lstat(filepath.Join(dst, n), &st))
		got, err := os.ReadFile(filepath.Join(dst, n))
		noErr(t, err)
		if i == 0 {
			first, content = st, got
			continue
		}
		if st.Ino != first.Ino || !bytes.Equal(got, content) {
			t.Errorf("%s: inode %d, %d bytes; want the inode of %s (%d), %d bytes", n, st.Ino, len(got), names[0], first.Ino, len(content))
		}
	}
	if first.Nlink != uint64(len(names)) {
		t.Errorf("restored inode has %d links; want %d", first.Nlink, len(names))
	}
}

// TestBackupLinkGroupFromParent: with a parent, an unchanged hard-linked
// inode is taken over once for all its names, and a changed one is read
// once for all of them.
func TestBackupLinkGroupFromParent(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a/f": []byte("v1"), "b/keep": []byte("k")})
	noErr(t, os.Link(filepath.Join(src, "a/f"), filepath.Join(src, "b/f")))
	parent, err := r.Backup(ctx, src, BackupOptions{})
	noErr(t, err)

	reads := 0
	var mu sync.Mutex
	r.readHook = func(_ string, rd io.Reader) io.Reader {
		mu.Lock()
		reads++
		mu.Unlock()
		return rd
	}
	same, err := r.Backup(ctx, src, BackupOptions{Parent: parent.ID})
	noErr(t, err)
	if reads != 0 || same.Stats.FilesReused != 3 {
		t.Errorf("unchanged: %d reads, %d reused; want 0 and 3", reads, same.Stats.FilesReused)
	}

	noErr(t, os.WriteFile(filepath.Join(src, "b/f"), []byte("version two"), 0o644))
	changed, err := r.Backup(ctx, src, BackupOptions{Parent: parent.ID})
	noErr(t, err)
	if reads != 1 {
		t.Errorf("changed: the inode was read %d times; want once", reads)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	_, err = r.Restore(ctx, changed.ID, dst, RestoreOptions{})
	noErr(t, err)
	for _, n := range []string{"a/f", "b/f"} {
		got, err := os.ReadFile(filepath.Join(dst, n))
		noErr(t, err)
		if string(got) != "version two" {
			t.Errorf("%s = %q; want the new version", n, got)
		}
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
