package fstree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// build makes a small fidelity tree (1 KiB large file) in a fresh directory.
func build(t *testing.T, seed uint64, special bool) (string, Report) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "t")
	rep, err := BuildFidelity(dir, FidelityOptions{Seed: seed, LargeSize: 1 << 10, Special: special})
	if err != nil {
		t.Fatalf("BuildFidelity: %v", err)
	}
	return dir, rep
}

func excludeOf(rep Report) func(string) bool {
	return func(rel string) bool { return slices.Contains(rep.Skipped, rel) }
}

func TestBuildFidelityDeterministic(t *testing.T) {
	a, repA := build(t, 7, true)
	b, repB := build(t, 7, true)
	c, _ := build(t, 8, true)
	if repA.Files != repB.Files || repA.Bytes != repB.Bytes {
		t.Errorf("reports differ: %+v vs %+v", repA, repB)
	}
	diffs, err := CompareWith(a, b, Options{Exclude: excludeOf(repA)})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Errorf("same seed, %d differences:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	diffs, err = CompareWith(a, c, Options{Exclude: excludeOf(repA)})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) == 0 {
		t.Error("different seeds built identical trees")
	}
}

func TestBuildFidelityNotEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildFidelity(dir, FidelityOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("BuildFidelity into a non-empty dir: err = %v; want ErrExists", err)
	}
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBuildFidelityCases(t *testing.T) {
	dir, rep := build(t, 1, true)
	t.Logf("report: %+v", rep)
	p := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }

	deep := filepath.Join(dir, "deep")
	levels := 0
	for {
		des, err := os.ReadDir(deep)
		if err != nil {
			t.Fatal(err)
		}
		if len(des) != 1 || !des[0].IsDir() {
			break
		}
		deep = filepath.Join(deep, des[0].Name())
		levels++
	}
	if rel := len(deep) - len(dir); levels < 50 || rel < 1000 {
		t.Errorf("deep path: %d levels, %d bytes; want > 50 and > 1000", levels, rel)
	}

	modes := map[string]uint32{
		"perms/setuid": 0o4755, "perms/setgid": 0o2755, "perms/setgid-dir": 0o2755,
		"perms/sticky": 0o1777, "perms/readonly": 0o555, "files/small.txt": 0o644, "dirs/empty": 0o755,
	}
	if os.Geteuid() == 0 {
		modes["perms/zero"] = 0
		modes["owners/setuid"] = 0o4750
	}
	for rel, want := range modes {
		if got := lstat(t, p(rel)).Mode & 07777; got != want {
			t.Errorf("%s: mode %#o; want %#o", rel, got, want)
		}
	}
	if os.Geteuid() == 0 {
		for _, rel := range []string{"owners/file", "owners/dir", "owners/link", "owners/setuid"} {
			if st := lstat(t, p(rel)); st.Uid != FidelityUID || st.Gid != FidelityGID {
				t.Errorf("%s: owner %d:%d; want %d:%d", rel, st.Uid, st.Gid, FidelityUID, FidelityGID)
			}
		}
	}
	if st := lstat(t, p("hardlinks/b/three")); st.Nlink != 3 || st.Ino != lstat(t, p("hardlinks/one")).Ino {
		t.Errorf("hardlinks: nlink %d, not one inode", st.Nlink)
	}
	if st := lstat(t, p("fifos/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifos/fifo: mode %#o is not a fifo", st.Mode)
	}
	for _, n := range OddNames() {
		if _, err := os.Lstat(p("names/" + n)); err != nil {
			t.Errorf("odd name %q: %v", n, err)
		}
	}
	if target, err := os.Readlink(p("links/dangling")); err != nil || target != "nowhere/at/all" {
		t.Errorf("links/dangling -> %q, %v", target, err)
	}
	if st := lstat(t, p("files/old-mtime")); st.Mtim.Sec >= 0 || st.Mtim.Nsec != 123456789 {
		t.Errorf("files/old-mtime: mtime %v; want before 1970 with .123456789", st.Mtim)
	}
	if st := lstat(t, p("links/relative")); st.Mtim.Nsec == 0 && st.Mtim.Sec == 0 {
		t.Error("links/relative: symlink mtime not set")
	}
	if len(rep.Sparse) != 2 {
		t.Errorf("Sparse = %v; want 2 files", rep.Sparse)
	}
	for _, rel := range rep.Sparse {
		got, err := Allocated(p(rel))
		if err != nil {
			t.Fatal(err)
		}
		if st := lstat(t, p(rel)); got > 1<<20 || st.Size < 16<<20 {
			t.Errorf("%s: size %d allocates %d; want a sparse file", rel, st.Size, got)
		}
	}
	x, err := userXattrs(p("xattrs/file"))
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != 3 && !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, "xattrs/") }) {
		t.Errorf("xattrs/file has %d user xattrs and no note explains it", len(x))
	}
	if x["user.binary"] != "\x00\x01\x02\xfe\xff\n\x00" && len(x) > 0 {
		t.Errorf("user.binary = %q", x["user.binary"])
	}
}

// keepMtime runs fn and puts back the mtime that path had before it.
func keepMtime(t *testing.T, path string, fn func()) {
	t.Helper()
	st := lstat(t, path)
	fn()
	ts := []unix.Timespec{st.Mtim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type change struct{ path, what string }

// TestCompareDetects applies every mutation to one copy of the tree (they
// touch distinct paths, so building one tree per case is not needed) and
// checks that each case's paths differ in exactly the expected ways and that
// nothing else differs.
func TestCompareDetects(t *testing.T) {
	root := os.Geteuid() == 0
	tests := []struct {
		name   string
		root   bool // needs root
		xattr  bool // needs xattr support
		mutate func(t *testing.T, p func(string) string)
		want   []change
	}{
		{name: "file mtime", mutate: func(t *testing.T, p func(string) string) {
			st := lstat(t, p("files/future-mtime"))
			st.Mtim.Nsec = (st.Mtim.Nsec + 1) % 1e9
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("files/future-mtime"), []unix.Timespec{st.Mtim, st.Mtim}, 0))
		}, want: []change{{"files/future-mtime", WhatMtime}}},
		{name: "dir mtime", mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("dirs/nested"), []unix.Timespec{{Sec: 5}, {Sec: 5}}, 0))
		}, want: []change{{"dirs/nested", WhatMtime}}},
		{name: "symlink mtime", mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("links/dangling"), []unix.Timespec{{Sec: 5}, {Sec: 5}}, unix.AT_SYMLINK_NOFOLLOW))
		}, want: []change{{"links/dangling", WhatMtime}}},
		{name: "setuid lost", mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.Chmod(p("perms/setuid"), 0o755))
		}, want: []change{{"perms/setuid", WhatMode}}},
		{name: "sticky lost", mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.Chmod(p("perms/sticky"), 0o777))
		}, want: []change{{"perms/sticky", WhatMode}}},
		{name: "owner", root: true, mutate: func(t *testing.T, p func(string) string) {
			must(t, os.Lchown(p("owners/link"), 0, 0))
		}, want: []change{{"owners/link", WhatUID}, {"owners/link", WhatGID}}},
		{name: "xattr value", xattr: true, mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.Lsetxattr(p("xattrs/file"), "user.comment", []byte("bye"), 0))
		}, want: []change{{"xattrs/file", WhatXattr}}},
		{name: "xattr added", xattr: true, mutate: func(t *testing.T, p func(string) string) {
			must(t, unix.Lsetxattr(p("dirs/empty"), "user.new", nil, 0))
		}, want: []change{{"dirs/empty", WhatXattr}}},
		{name: "content", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("files/random-3MiB.bin"), func() {
				f, err := os.OpenFile(p("files/random-3MiB.bin"), os.O_RDWR, 0)
				must(t, err)
				defer f.Close()
				buf := make([]byte, 1)
				_, err = f.ReadAt(buf, 2<<20+7)
				must(t, err)
				buf[0] ^= 1
				_, err = f.WriteAt(buf, 2<<20+7)
				must(t, err)
			})
		}, want: []change{{"files/random-3MiB.bin", WhatContent}}},
		{name: "size", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("files/small.txt"), func() { must(t, os.Truncate(p("files/small.txt"), 3)) })
		}, want: []change{{"files/small.txt", WhatSize}}},
		{name: "symlink target", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("links"), func() {
				st := lstat(t, p("links/relative"))
				must(t, os.Remove(p("links/relative")))
				must(t, os.Symlink("../files/empty", p("links/relative")))
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("links/relative"), []unix.Timespec{st.Mtim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW))
			})
		}, want: []change{{"links/relative", WhatSize}, {"links/relative", WhatTarget}}},
		{name: "missing file", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("names"), func() { must(t, os.Remove(p("names/tab\there"))) })
		}, want: []change{{"names/tab\there", WhatMissing}}},
		{name: "extra file", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("dirs/empty"), func() { must(t, os.WriteFile(p("dirs/empty/new"), nil, 0o644)) })
		}, want: []change{{"dirs/empty/new", WhatExtra}}},
		{name: "hard link broken", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("hardlinks/b"), func() {
				st := lstat(t, p("hardlinks/b/three"))
				data, err := os.ReadFile(p("hardlinks/b/three"))
				must(t, err)
				must(t, os.Remove(p("hardlinks/b/three")))
				must(t, os.WriteFile(p("hardlinks/b/three"), data, 0o644))
				must(t, unix.Chmod(p("hardlinks/b/three"), st.Mode&07777))
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("hardlinks/b/three"), []unix.Timespec{st.Mtim, st.Mtim}, 0))
			})
		}, want: []change{{"hardlinks/a/two", WhatLink}, {"hardlinks/b/three", WhatLink}, {"hardlinks/one", WhatLink}}},
		{name: "hard link added", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("dirs/nested/inner"), func() {
				st := lstat(t, p("dirs/nested/inner/file.txt"))
				must(t, os.Remove(p("dirs/nested/inner/file.txt")))
				must(t, os.Link(p("files/empty"), p("dirs/nested/inner/file.txt")))
				must(t, unix.Chmod(p("files/empty"), st.Mode&07777))
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("files/empty"), []unix.Timespec{st.Mtim, st.Mtim}, 0))
			})
		}, want: []change{
			{"dirs/nested/inner/file.txt", WhatSize}, {"dirs/nested/inner/file.txt", WhatLink},
			{"files/empty", WhatMtime}, {"files/empty", WhatLink},
		}},
		{name: "fifo became file", mutate: func(t *testing.T, p func(string) string) {
			keepMtime(t, p("fifos"), func() {
				must(t, os.Remove(p("fifos/fifo")))
				must(t, os.WriteFile(p("fifos/fifo"), nil, 0o640))
			})
		}, want: []change{{"fifos/fifo", WhatType}}},
	}
	a, _ := build(t, 3, false)
	b, rep := build(t, 3, false)
	noXattr := slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, "xattrs/") })
	p := func(rel string) string { return filepath.Join(b, filepath.FromSlash(rel)) }
	byPath := map[string][]change{} // what the applied cases expect
	for _, tt := range tests {
		if (tt.root && !root) || (tt.xattr && noXattr) {
			continue
		}
		tt.mutate(t, p)
		for _, c := range tt.want {
			byPath[c.path] = append(byPath[c.path], c)
		}
	}
	diffs, err := Diff(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]change{}
	for _, d := range diffs {
		got[d.Path] = append(got[d.Path], change{d.Path, d.What})
		if byPath[d.Path] == nil {
			t.Errorf("unexpected difference: %s", d)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !root {
				t.Skip("needs root")
			}
			if tt.xattr && noXattr {
				t.Skip("no xattr support")
			}
			for _, w := range tt.want {
				want := byPath[w.path]
				sortChanges(want)
				sortChanges(got[w.path])
				if !slices.Equal(got[w.path], want) {
					t.Errorf("%q: got %v; want %v", w.path, got[w.path], want)
				}
			}
		})
	}
}

func TestCompareOptions(t *testing.T) {
	a, _ := build(t, 3, false)
	b, _ := build(t, 3, false)
	must(t, unix.Chmod(b, 0o700))
	must(t, os.WriteFile(filepath.Join(b, "dirs", "new"), nil, 0o644))
	exclude := func(rel string) bool { return rel == "dirs" }
	for _, tt := range []struct {
		name string
		opts Options
		want []change
	}{
		{"none", Options{}, []change{{".", WhatMode}, {"dirs", WhatMtime}, {"dirs/new", WhatExtra}}},
		{"ignore root", Options{IgnoreRootMeta: true}, []change{{"dirs", WhatMtime}, {"dirs/new", WhatExtra}}},
		{"exclude", Options{Exclude: exclude}, []change{{".", WhatMode}}},
		{"both", Options{IgnoreRootMeta: true, Exclude: exclude}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			diffs, err := Diff(a, b, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			for _, d := range diffs {
				got = append(got, change{d.Path, d.What})
			}
			sortChanges(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func sortChanges(c []change) {
	slices.SortFunc(c, func(x, y change) int {
		if n := strings.Compare(x.path, y.path); n != 0 {
			return n
		}
		return strings.Compare(x.what, y.what)
	})
}

func TestCompareErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	must(t, os.WriteFile(file, nil, 0o644))
	if _, err := Compare(dir, filepath.Join(dir, "nope")); err == nil {
		t.Error("Compare with a missing root: no error")
	}
	if _, err := Compare(dir, file); err == nil {
		t.Error("Compare with a file as root: no error")
	}
	if _, err := Allocated(filepath.Join(dir, "nope")); err == nil {
		t.Error("Allocated of a missing file: no error")
	}
}

func TestDifferenceString(t *testing.T) {
	for _, tt := range []struct {
		d    Difference
		want string
	}{
		{Difference{Path: "a\nb", What: WhatMissing, A: "file"}, `"a\nb": missing from b (a has file)`},
		{Difference{Path: "x", What: WhatExtra, B: "dir"}, `"x": only in b (dir)`},
		{Difference{Path: "x", What: WhatMode, A: "0644", B: "0755"}, `"x": mode differs: a=0644 b=0755`},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %s; want %s", got, tt.want)
		}
	}
}
