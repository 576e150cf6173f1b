package repo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dryRunSource holds one of each kind of entry: files, nested
// directories, a symlink, a FIFO and a hard-link group across directories.
func dryRunSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	files := map[string][]byte{"a.txt": []byte("alpha alpha"), "d/c.txt": []byte("gamma"), "d/e/f.txt": []byte("phi"), "d/e/g.txt": []byte("gee")}
	files["b.bin"] = make([]byte, 100<<10)
	for i := range files["b.bin"] {
		files["b.bin"][i] = byte(i * 7 / 3)
	}
	writeTree(t, src, files)
	mustDo := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(os.Symlink("d/c.txt", filepath.Join(src, "link")))
	mustDo(unix.Mkfifo(filepath.Join(src, "pipe"), 0o644))
	mustDo(os.WriteFile(filepath.Join(src, "h1"), []byte("one inode, two names"), 0o644))
	mustDo(os.Link(filepath.Join(src, "h1"), filepath.Join(src, "d/h2")))
	return src
}

// replaced reports whether entry b was replaced by entry a: another
// inode, another type, or (an inode number can be reused at once) a
// symlink of another length.
func replaced(b, a statEntry) bool {
	typ := b.mode & unix.S_IFMT
	return b.ino != a.ino || typ != a.mode&unix.S_IFMT || typ == unix.S_IFLNK && b.size != a.size
}

// observed returns the paths whose entry a restore created, replaced or
// removed, judged by stat alone, leaving out what lay below a removed
// directory.
func observed(before, after map[string]statEntry) []string {
	changed := func(p string) bool {
		b, inB := before[p]
		a, inA := after[p]
		return inB != inA || replaced(b, a)
	}
	var out []string
	for _, m := range []map[string]statEntry{before, after} {
		for p := range m {
			if p == "." || !changed(p) || slices.Contains(out, p) {
				continue
			}
			if dir := path.Dir(p); dir != "." && before[dir].mode&unix.S_IFMT == unix.S_IFDIR && changed(dir) {
				if _, inA := after[p]; !inA {
					continue // removed with its directory
				}
			}
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestRestoreDryRun: a dry run changes nothing (no entry's inode, ctime or
// mtime moves, the target's own included), and what it lists and counts is
// what the real run then does.
func TestRestoreDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := dryRunSource(t)
	r, _ := newTestRepo(t)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	do := func(t *testing.T, errs ...error) {
		t.Helper()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, dst string)
	}{
		{"nothing", func(*testing.T, string) {}},
		{"same size and mtime, other content", func(t *testing.T, dst string) {
			p := filepath.Join(dst, "a.txt")
			fi, err := os.Stat(p)
			do(t, err, os.WriteFile(p, []byte("ALPHA alpha"), 0o644), os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}},
		{"metadata only", func(t *testing.T, dst string) {
			do(t, os.Chmod(filepath.Join(dst, "b.bin"), 0o600), os.Chmod(filepath.Join(dst, "d"), 0o700))
		}},
		{"missing file", func(t *testing.T, dst string) { do(t, os.Remove(filepath.Join(dst, "b.bin"))) }},
		{"extras", func(t *testing.T, dst string) {
			do(t, os.WriteFile(filepath.Join(dst, "d/extra"), nil, 0o644), os.MkdirAll(filepath.Join(dst, "x/y/z"), 0o755),
				os.WriteFile(filepath.Join(dst, "x/y/z/f"), nil, 0o644), os.Chmod(filepath.Join(dst, "x/y"), 0o555))
		}},
		{"dir in place of a file", func(t *testing.T, dst string) {
			p := filepath.Join(dst, "a.txt")
			do(t, os.Remove(p), os.MkdirAll(filepath.Join(p, "inner"), 0o755))
		}},
		{"file in place of a dir", func(t *testing.T, dst string) {
			p := filepath.Join(dst, "d/e")
			do(t, os.RemoveAll(p), os.WriteFile(p, []byte("x"), 0o644))
		}},
		{"symlinks", func(t *testing.T, dst string) {
			do(t, os.Remove(filepath.Join(dst, "link")), os.Symlink("elsewhere", filepath.Join(dst, "link")),
				os.RemoveAll(filepath.Join(dst, "d/e")), os.Symlink("/tmp", filepath.Join(dst, "d/e")))
		}},
		{"file in place of a fifo", func(t *testing.T, dst string) {
			p := filepath.Join(dst, "pipe")
			do(t, os.Remove(p), os.WriteFile(p, nil, 0o644))
		}},
		{"copy in place of a hard link", func(t *testing.T, dst string) {
			p := filepath.Join(dst, "d/h2")
			fi, err := os.Stat(p)
			do(t, err, os.Remove(p), os.WriteFile(p, []byte("one inode, two names"), 0o644), os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}},
		{"extra hard links", func(t *testing.T, dst string) {
			// a.txt is checked before d/extra is removed; b.bin after
			// zz, which is removed first in the same directory.
			do(t, os.Link(filepath.Join(dst, "a.txt"), filepath.Join(dst, "d/extra")), os.Link(filepath.Join(dst, "b.bin"), filepath.Join(dst, "zz")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := r.Restore(ctx, h.ID, dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			tt.change(t, dst)
			before := statTree(t, dst)
			dry, err := r.Restore(ctx, h.ID, dst, RestoreOptions{DryRun: true, Delete: true})
			if err != nil {
				t.Fatal(err)
			}
			sameStats(t, "dry run", before, statTree(t, dst))
			real, err := r.Restore(ctx, h.ID, dst, RestoreOptions{Delete: true})
			if err != nil {
				t.Fatal(err)
			}
			sameAs(t, src, dst)
			checkDryRun(t, dry, real, before, statTree(t, dst))
		})
	}
}

// checkDryRun compares a dry run with the real run that followed it: the
// counts, the paths it listed with those that changed, and each action
// with the entry the real run left.
func checkDryRun(t *testing.T, dry, real RestoreStats, before, after map[string]statEntry) {
	t.Helper()
	if !dry.DryRun || real.DryRun || real.Actions != nil {
		t.Errorf("dry run flag %v, real %v with %d actions", dry.DryRun, real.DryRun, len(real.Actions))
	}
	type counts struct{ written, bytes, unchanged, checked, removed, packs, fetched uint64 }
	d := counts{dry.FilesWritten, dry.BytesWritten, dry.FilesUnchanged, dry.FilesChecked, dry.Removed, dry.PacksFetched, dry.BytesFetched}
	w := counts{real.FilesWritten, real.BytesWritten, real.FilesUnchanged, real.FilesChecked, real.Removed, real.PacksFetched, real.BytesFetched}
	if d != w {
		t.Errorf("dry run counted %+v; the real run %+v", d, w)
	}
	var listed []string
	for _, a := range dry.Actions {
		if a.Path == "." { // the new target itself
			continue
		}
		if !slices.Contains(listed, a.Path) {
			listed = append(listed, a.Path)
		}
		typ := after[a.Path].mode & unix.S_IFMT
		var ok bool
		switch a.Op {
		case OpRemove:
			b, inB := before[a.Path]
			aft, inA := after[a.Path]
			ok = inB && (!inA || replaced(b, aft))
		case OpWrite, OpLink:
			ok = typ == unix.S_IFREG
		case OpMkdir:
			ok = typ == unix.S_IFDIR
		case OpSymlink:
			ok = typ == unix.S_IFLNK
		case OpMkfifo:
			ok = typ == unix.S_IFIFO
		}
		if !ok {
			t.Errorf("dry run said %q; the real run left %+v (was %+v)", a, after[a.Path], before[a.Path])
		}
	}
	slices.Sort(listed)
	if got := observed(before, after); !slices.Equal(listed, got) {
		t.Errorf("dry run listed %q; the real run changed %q", listed, got)
	}
}

// TestRestoreDryRunNewTarget: a dry run into a missing directory creates
// nothing and lists every entry.
func TestRestoreDryRunNewTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := dryRunSource(t)
	r := newCachedRepo(t)
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dst := filepath.Join(parent, "new", "dst")
	before := statTree(t, parent)
	dry, err := r.Restore(ctx, h.ID, dst, RestoreOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	sameStats(t, "dry run", before, statTree(t, parent))
	if s, err := r.DirStatus(ctx, dst); err != nil || s.State != DirMissing || s.Record != nil {
		t.Errorf("status after a dry run: %+v, %v; want missing, no record", s, err)
	}
	var lines []string
	for _, a := range dry.Actions {
		lines = append(lines, a.String())
	}
	want := []string{"mkdir .", "write a.txt", "write b.bin", "mkdir d", "write h1", "symlink link", "mkfifo pipe",
		"write d/c.txt", "mkdir d/e", "write d/e/f.txt", "write d/e/g.txt", "link d/h2"}
	if !slices.Equal(lines, want) {
		t.Errorf("dry run into a new directory listed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	real, err := r.Restore(ctx, h.ID, dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkDryRun(t, dry, real, map[string]statEntry{}, statTree(t, dst))

	// The target policy applies: an untracked non-empty directory needs
	// Delete for a dry run too.
	other := t.TempDir()
	writeTree(t, other, map[string][]byte{"mine": nil})
	if _, err := r.Restore(ctx, h.ID, other, RestoreOptions{DryRun: true}); !errors.Is(err, ErrTargetRefused) {
		t.Errorf("dry run into an untracked non-empty directory: %v; want ErrTargetRefused", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, markerName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker: %v", err)
	}
}
