package repo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// stampTree gives every entry under dir, symlinks included (not followed),
// the mtime sec, so that only the changes a test makes show.
func stampTree(t *testing.T, dir string, sec int64) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- {
		setMtime(t, paths[i], sec)
	}
}

func setMtime(t *testing.T, p string, sec int64) {
	t.Helper()
	ts := []unix.Timespec{{Sec: sec, Nsec: 7}, {Sec: sec, Nsec: 7}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// diffBase writes the tree every diff test starts from.
func diffBase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{
		"a.txt":      []byte("alpha"),
		"dir/b.txt":  []byte("bravo"),
		"gone.txt":   []byte("gone"),
		"gonedir/x":  []byte("x"),
		"gonedir2/x": []byte("x"),
		"mode.txt":   []byte("mode"),
		"mtime.txt":  []byte("mtime"),
		"same.txt":   []byte("same size, other bytes"),
		"typechg":    []byte("a file that becomes a directory"),
		"keep/deep":  []byte("unchanged subtree"),
		"owner.txt":  []byte("owner"),
		"xattr.txt":  []byte("xattr"),
	})
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "hardlink")); err != nil {
		t.Fatal(err)
	}
	stampTree(t, dir, 1_700_000_000)
	return dir
}

// mutateForDiff makes one change of each kind to a diffBase tree. Owner
// and xattr changes are made only where they can be (root, a file system
// with user xattrs); it reports which were.
func mutateForDiff(t *testing.T, dir string) (owner, xattrs bool) {
	t.Helper()
	j := func(p string) string { return filepath.Join(dir, p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(j("added.txt"), []byte("new"), 0o644))
	must(os.WriteFile(j("dir/b.txt"), []byte("bravo, longer"), 0o644))
	must(os.Remove(j("gone.txt")))
	must(os.RemoveAll(j("gonedir")))
	must(os.RemoveAll(j("gonedir2")))
	must(os.WriteFile(j("gonedir2"), []byte("now a file"), 0o644))
	must(os.Chmod(j("mode.txt"), 0o600))
	must(os.WriteFile(j("same.txt"), []byte("SAME SIZE, OTHER BYTES"), 0o644))
	must(os.Remove(j("typechg")))
	must(os.MkdirAll(j("typechg"), 0o755))
	must(os.WriteFile(j("typechg/y"), []byte("y"), 0o644))
	must(os.Remove(j("link")))
	must(os.Symlink("dir/b.txt", j("link")))
	must(os.Remove(j("hardlink")))
	must(os.MkdirAll(j("newdir/sub"), 0o755))
	must(os.WriteFile(j("newdir/sub/z"), []byte("z"), 0o644))
	must(os.Chmod(j("keep"), 0o700))
	owner = os.Geteuid() == 0 && unix.Lchown(j("owner.txt"), 4242, 4242) == nil
	xattrs = unix.Lsetxattr(j("xattr.txt"), "user.sandsnap.test", []byte("v"), 0) == nil
	stampTree(t, dir, 1_700_000_000)
	setMtime(t, j("mtime.txt"), 1_700_000_001)
	return owner, xattrs
}

// reverse turns the changes from a to b into those from b to a.
func reverse(cs []Change) []Change {
	out := make([]Change, len(cs))
	for i, c := range cs {
		switch c.Kind {
		case ChangeAdded:
			c.Kind = ChangeRemoved
		case ChangeRemoved:
			c.Kind = ChangeAdded
		}
		out[i] = c
	}
	return out
}

func collect(t *testing.T, run func(fn func(Change) error) error) []Change {
	t.Helper()
	var got []Change
	if err := run(func(c Change) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	dir := diffBase(t)
	a, err := r.Backup(ctx, dir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner, xattrs := mutateForDiff(t, dir)

	changed := func(p string, what ...string) Change { return Change{Path: p, Kind: ChangeChanged, What: what} }
	added := func(p string) Change { return Change{Path: p, Kind: ChangeAdded} }
	removed := func(p string) Change { return Change{Path: p, Kind: ChangeRemoved} }
	// full is every change; cheap is what lstat alone can see (same.txt
	// kept its size and mtime).
	all := []struct {
		c    Change
		made bool
	}{
		{changed("a.txt", "link"), true},
		{added("added.txt"), true},
		{changed("dir/b.txt", "content", "size"), true},
		{removed("gone.txt"), true},
		{removed("gonedir"), true},
		{removed("gonedir/x"), true},
		{changed("gonedir2", "type"), true},
		{removed("gonedir2/x"), true},
		{removed("hardlink"), true},
		{changed("keep", "mode"), true},
		{changed("link", "target"), true},
		{changed("mode.txt", "mode"), true},
		{changed("mtime.txt", "mtime"), true},
		{added("newdir"), true},
		{added("newdir/sub"), true},
		{added("newdir/sub/z"), true},
		{changed("owner.txt", "owner"), owner},
		{changed("same.txt", "content"), true},
		{changed("typechg", "type"), true},
		{added("typechg/y"), true},
		{changed("xattr.txt", "xattrs"), xattrs},
	}
	var full []Change
	for _, x := range all {
		if x.made {
			full = append(full, x.c)
		}
	}
	t.Logf("owner change tested: %v; xattr change tested: %v", owner, xattrs)
	var cheap []Change
	for _, c := range full {
		switch c.Path {
		case "same.txt":
		case "dir/b.txt":
			cheap = append(cheap, changed("dir/b.txt", "size"))
		default:
			cheap = append(cheap, c)
		}
	}

	dirTests := []struct {
		name string
		opts DiffOptions
		want []Change
	}{
		{"stat only", DiffOptions{}, cheap},
		{"content", DiffOptions{Content: true}, full},
	}
	for _, tc := range dirTests {
		t.Run("dir/"+tc.name, func(t *testing.T) {
			got := collect(t, func(fn func(Change) error) error { return r.DiffDir(ctx, a.ID, dir, tc.opts, fn) })
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DiffDir =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}

	b, err := r.Backup(ctx, dir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snapTests := []struct {
		name string
		a, b chunk.ID
		want []Change
	}{
		{"a to b", a.ID, b.ID, full},
		{"same", a.ID, a.ID, nil},
		{"b to a", b.ID, a.ID, reverse(full)},
	}
	for _, tc := range snapTests {
		t.Run("snapshots/"+tc.name, func(t *testing.T) {
			got := collect(t, func(fn func(Change) error) error { return r.Diff(ctx, tc.a, tc.b, fn) })
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
	for _, content := range []bool{false, true} {
		if got := collect(t, func(fn func(Change) error) error {
			return r.DiffDir(ctx, b.ID, dir, DiffOptions{Content: content}, fn)
		}); len(got) != 0 {
			t.Errorf("DiffDir(content=%v) of the tree just backed up = %v; want nothing", content, got)
		}
	}
}

func TestDiffErrors(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	dir := diffBase(t)
	a, err := r.Backup(ctx, dir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mutateForDiff(t, dir)
	stop := errors.New("stop")
	file := filepath.Join(dir, "a.txt")
	missing := chunk.Hash([]byte("no such snapshot"))
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"unknown snapshot in Diff", func() error {
			return r.Diff(ctx, missing, a.ID, func(Change) error { return stop })
		}, ErrSnapshotNotFound},
		{"callback error stops DiffDir", func() error {
			return r.DiffDir(ctx, a.ID, dir, DiffOptions{}, func(Change) error { return stop })
		}, stop},
		{"unknown snapshot", func() error {
			return r.DiffDir(ctx, missing, dir, DiffOptions{}, func(Change) error { return nil })
		}, ErrSnapshotNotFound},
		{"not a directory", func() error {
			return r.DiffDir(ctx, a.ID, file, DiffOptions{}, func(Change) error { return nil })
		}, ErrNotDir},
		{"missing directory", func() error {
			return r.DiffDir(ctx, a.ID, filepath.Join(dir, "nope"), DiffOptions{}, func(Change) error { return nil })
		}, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("error %v; want %v", err, tc.want)
			}
		})
	}
	// A callback error from Diff between two real snapshots comes back.
	b, err := r.Backup(ctx, dir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Diff(ctx, a.ID, b.ID, func(Change) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Diff with failing callback: %v; want %v", err, stop)
	}
}

func TestDiffDirNoFollow(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	dir := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"secret": []byte("s")})
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	a, err := r.Backup(ctx, dir, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Changing what the link points to is no change of dir.
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := collect(t, func(fn func(Change) error) error { return r.DiffDir(ctx, a.ID, dir, DiffOptions{Content: true}, fn) })
	if len(got) != 0 {
		t.Errorf("DiffDir through a symlink = %v; want nothing", got)
	}
}
