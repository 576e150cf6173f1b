package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/internal/usertest"
	"github.com/sandsnap/sandsnap/manifest"
)

// mkdirAt creates the directory name in dirfd and returns it open.
func mkdirAt(t *testing.T, dirfd int, name string) int {
	t.Helper()
	if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
		t.Fatalf("mkdirat %s: %v", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return fd
}

// writeAt creates the file name in dirfd holding data.
func writeAt(t *testing.T, dirfd int, name string, data []byte) {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

// readAt returns the content of the file name in dirfd.
func readAt(t *testing.T, dirfd int, name string) []byte {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return data
}

// openDir opens dir (a path shorter than PATH_MAX).
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// deepName is the name of every level of the deep test tree: 24 levels
// of it make a path of about 5 KB, more than PATH_MAX (4096).
var deepName = strings.Repeat("d", 200)

const deepLevels = 24

// buildDeepTree creates, below dir, deepLevels nested directories with a
// file at each level and, at the bottom, a symlink, a FIFO, and a file
// and a directory with user xattrs (where the filesystem has them).
// Every call is relative to a descriptor, as nothing else can reach the
// bottom.
func buildDeepTree(t *testing.T, dir string) (xattrs bool) {
	t.Helper()
	fd := openDir(t, dir)
	for i := range deepLevels {
		writeAt(t, fd, "level.txt", fmt.Appendf(nil, "level %d\n", i))
		sub := mkdirAt(t, fd, deepName)
		unix.Close(fd)
		fd = sub
	}
	defer unix.Close(fd)
	writeAt(t, fd, "bottom.bin", bytes.Repeat([]byte("the bottom of a path longer than PATH_MAX\n"), 30000))
	if err := unix.Symlinkat("bottom.bin", fd, "link"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknodat(fd, "fifo", unix.S_IFIFO|0o640, 0); err != nil {
		t.Fatal(err)
	}
	sub := mkdirAt(t, fd, "tagged")
	defer unix.Close(sub)
	err := unix.Fsetxattr(sub, "user.where", []byte("deep dir"), 0)
	if err == nil {
		writeAt(t, fd, "tagged.txt", []byte("x"))
		tf, _ := unix.Openat(fd, "tagged.txt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		err = unix.Fsetxattr(tf, "user.where", []byte("deep file"), 0)
		unix.Close(tf)
	}
	return err == nil
}

func TestBackupDeeperThanPathMax(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	xattrs := buildDeepTree(t, src)
	if l := len(src) + deepLevels*(len(deepName)+1); l <= unix.PathMax {
		t.Fatalf("the tree's deepest path is %d bytes; the test needs more than %d", l, unix.PathMax)
	}
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(deepLevels + 2) // level.txt at each level, bottom.bin, tagged.txt if xattrs
	if !xattrs {
		want--
	}
	if h.Stats.Files != want || h.Stats.Dirs != deepLevels+1 || h.Stats.Symlinks != 1 || h.Stats.Other != 1 || len(h.Stats.Skipped) != 0 {
		t.Fatalf("stats: %d files, %d dirs, %d symlinks, %d other, skipped %v; want %d, %d, 1, 1, none",
			h.Stats.Files, h.Stats.Dirs, h.Stats.Symlinks, h.Stats.Other, h.Stats.Skipped, want, deepLevels+1)
	}
	// With SkipUnreadable nothing is cut either: the same tree.
	h2, err := r.Backup(ctx, src, BackupOptions{SkipUnreadable: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(h2.Stats.Skipped) != 0 || rootTree(t, r, h2.ID) != rootTree(t, r, h.ID) {
		t.Fatalf("with SkipUnreadable: skipped %v, root %s; want none and the same root as without", h2.Stats.Skipped, rootTree(t, r, h2.ID).Str())
	}

	target := filepath.Join(t.TempDir(), "restored")
	if _, err := r.Restore(ctx, h.ID, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	checkDeepTree(t, target, xattrs)
	// A backup of the restored tree has the original's root: every name,
	// content, mode, owner, mtime and xattr came back.
	h3, err := r.Backup(ctx, target, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rootTree(t, r, h3.ID) != rootTree(t, r, h.ID) {
		t.Error("the restored tree backs up to another root tree than the original")
	}
}

// checkDeepTree reads the restored deep tree back through descriptors.
func checkDeepTree(t *testing.T, dir string, xattrs bool) {
	t.Helper()
	fd := openDir(t, dir)
	for i := range deepLevels {
		if got, want := readAt(t, fd, "level.txt"), fmt.Sprintf("level %d\n", i); string(got) != want {
			t.Errorf("level %d: level.txt = %q; want %q", i, got, want)
		}
		sub, err := unix.Openat(fd, deepName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("level %d: %v", i, err)
		}
		fd = sub
	}
	defer unix.Close(fd)
	if got := readAt(t, fd, "bottom.bin"); !bytes.Equal(got, bytes.Repeat([]byte("the bottom of a path longer than PATH_MAX\n"), 30000)) {
		t.Errorf("bottom.bin: %d bytes differ from what was written", len(got))
	}
	buf := make([]byte, 64)
	if n, err := unix.Readlinkat(fd, "link", buf); err != nil || string(buf[:n]) != "bottom.bin" {
		t.Errorf("link = %q, %v; want bottom.bin", buf[:max(n, 0)], err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "fifo", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o, %v; want a FIFO", st.Mode, err)
	}
	if !xattrs {
		t.Log("user xattrs not supported here: their part of the check left out")
		return
	}
	sub, err := unix.Openat(fd, "tagged", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sub)
	if n, err := unix.Fgetxattr(sub, "user.where", buf); err != nil || string(buf[:n]) != "deep dir" {
		t.Errorf("tagged user.where = %q, %v; want \"deep dir\"", buf[:max(n, 0)], err)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	n, err := countFDs()
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	return n
}

func countFDs() (int, error) {
	des, err := os.ReadDir("/proc/self/fd")
	return len(des) - 1, err // ReadDir's own
}

// buildComb creates a comb of depth levels below dir: each level holds a
// file, the next level "a" and a leaf directory "b" with a file. A walk
// in name order reaches b only after the whole depth below a, so it
// holds every level's descriptor meanwhile unless it bounds them.
func buildComb(t *testing.T, dir string, levels int) {
	t.Helper()
	fd := openDir(t, dir)
	for i := range levels {
		writeAt(t, fd, "f", fmt.Appendf(nil, "level %d\n", i))
		b := mkdirAt(t, fd, "b")
		writeAt(t, b, "g", fmt.Appendf(nil, "leaf %d\n", i))
		unix.Close(b)
		a := mkdirAt(t, fd, "a")
		unix.Close(fd)
		fd = a
	}
	unix.Close(fd)
}

func TestBackupBoundsDirectoryDescriptors(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	const levels = 150
	buildComb(t, src, levels)
	ref, err := r.Backup(ctx, src, BackupOptions{}) // also warms up whatever the runtime opens once
	if err != nil {
		t.Fatal(err)
	}
	base := openFDs(t)
	var mu sync.Mutex
	peak := 0
	// The hook runs on the workers as each file is read, while the walk
	// is under way: it samples the descriptors open at that moment.
	r.readHook = func(_ string, rd io.Reader) io.Reader {
		n, _ := countFDs()
		mu.Lock()
		peak = max(peak, n)
		mu.Unlock()
		return rd
	}
	const budget = 4
	h, err := r.Backup(ctx, src, BackupOptions{dirFDs: budget})
	r.readHook = nil
	if err != nil {
		t.Fatal(err)
	}
	if rootTree(t, r, h.ID) != rootTree(t, r, ref.ID) {
		t.Error("the backup with few descriptors has another root tree than the one without")
	}
	if h.Stats.Dirs != 2*levels || h.Stats.Files != 2*levels {
		t.Errorf("%d dirs, %d files; want %d each", h.Stats.Dirs, h.Stats.Files, 2*levels)
	}
	// Beyond the budget: descriptors pinned this instant (a listing per
	// walker, a file open per worker, and their directories), a few each.
	limit := budget + 4*(r.opts.Workers+1)
	if peak-base > limit {
		t.Errorf("%d descriptors open during the walk of a %d-level tree; want at most %d", peak-base, levels, limit)
	}
	if n := openFDs(t); n != base {
		t.Errorf("%d descriptors open after the backup; %d before", n, base)
	}
	t.Logf("peak %d descriptors above the %d before", peak-base, base)
}

func TestBackupFailureLeavesNoDescriptors(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	buildComb(t, src, 40)
	if _, err := r.Backup(ctx, src, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	base := openFDs(t)
	r.readHook = func(p string, rd io.Reader) io.Reader {
		if strings.Count(p, "/a") == 20 {
			return iotest.ErrReader(errors.New("input/output error"))
		}
		return rd
	}
	_, err := r.Backup(ctx, src, BackupOptions{dirFDs: 3})
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("Backup = %v; want ErrUnreadable", err)
	}
	if n := openFDs(t); n != base {
		t.Errorf("%d descriptors open after a failed backup; %d before", n, base)
	}
}

func TestBackupUnreadableDirectory(t *testing.T) {
	if !usertest.Nobody(t) { // as root, a child process runs it as nobody
		return
	}
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{
		"a/ok.txt": []byte("readable"), "a/locked/secret.txt": []byte("not for us"),
		"a/locked/sub/deeper.txt": []byte("nor this"), "b/c.txt": []byte("readable too"),
	})
	locked := filepath.Join(src, "a", "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) }) // so that TempDir can remove it

	t.Run("fails naming it", func(t *testing.T) {
		r, st := newTestRepo(t)
		_, err := r.Backup(ctx, src, BackupOptions{})
		if !errors.Is(err, ErrUnreadable) || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), locked) {
			t.Fatalf("Backup = %v; want ErrUnreadable, permission denied, naming %s", err, locked)
		}
		if n := objectBytes(t, st, snapshotPrefix); n != 0 {
			t.Errorf("a failed backup left %d bytes of snapshots", n)
		}
	})
	t.Run("skip-unreadable leaves it out and lists it", func(t *testing.T) {
		r, _ := newTestRepo(t)
		h, err := r.Backup(ctx, src, BackupOptions{SkipUnreadable: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Stats.Skipped) != 1 || h.Stats.Skipped[0].Path != "a/locked" || !strings.Contains(h.Stats.Skipped[0].Reason, "permission denied") {
			t.Fatalf("skipped = %v; want a/locked: permission denied", h.Stats.Skipped)
		}
		if h.Stats.Files != 2 || h.Stats.Dirs != 2 {
			t.Errorf("%d files, %d dirs; want 2 (a/ok.txt, b/c.txt), 2 (a, b)", h.Stats.Files, h.Stats.Dirs)
		}
		root, err := r.loadTree(ctx, rootTree(t, r, h.ID))
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.loadTree(ctx, findNode(root, "a").Subtree)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Nodes) != 1 || a.Nodes[0].Name != "ok.txt" || findNode(root, "b") == nil {
			t.Errorf("a holds %v, b %v; want only ok.txt in a, and b", a.Nodes, findNode(root, "b"))
		}
		s, _ := r.Snapshot(ctx, h.ID)
		if s.Summary.Skipped != 1 {
			t.Errorf("snapshot summary: %d skipped; want 1", s.Summary.Skipped)
		}
	})
	t.Run("listable but not searchable: each entry listed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "src")
		writeTree(t, dir, map[string][]byte{"nosearch/x": []byte("1"), "nosearch/y": []byte("2"), "z": []byte("3")})
		ns := filepath.Join(dir, "nosearch")
		if err := os.Chmod(ns, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ns, 0o755) })
		r, _ := newTestRepo(t)
		h, err := r.Backup(ctx, dir, BackupOptions{SkipUnreadable: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range h.Stats.Skipped {
			got = append(got, s.Path)
		}
		if strings.Join(got, " ") != "nosearch/x nosearch/y" || h.Stats.Files != 1 {
			t.Errorf("skipped %v, %d files; want nosearch/x and nosearch/y skipped, z saved", h.Stats.Skipped, h.Stats.Files)
		}
	})
}

// TestBackupVanishedDirectory removes a directory between its parent's
// listing and its own walk (a real ENOENT from openat), which a backup
// cannot time from outside.
func TestBackupVanishedDirectory(t *testing.T) {
	ctx := context.Background()
	for _, skip := range []bool{false, true} {
		r, _ := newTestRepo(t)
		src := t.TempDir()
		writeTree(t, src, map[string][]byte{"gone/x": []byte("1")})
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(src, "gone"), &st); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(src, "gone")); err != nil {
			t.Fatal(err)
		}
		b := newBackup(r, src, BackupOptions{SkipUnreadable: skip})
		root := b.pool.root(openDir(t, src))
		node := manifest.Node{Name: "gone", Type: manifest.TypeDir}
		f := b.walkDir(ctx, b.pool.child(root, "gone", "gone", &st), nil, &node)
		_, err := f.wait(ctx)
		b.pool.closeAll(root)
		switch {
		case skip && (err != nil || !f.skipped || len(b.skipped) != 1 || b.skipped[0].Path != "gone" || !strings.Contains(b.skipped[0].Reason, "no such file")):
			t.Errorf("with SkipUnreadable: err %v, skipped %v %v; want gone skipped as missing", err, f.skipped, b.skipped)
		case !skip && (!errors.Is(err, ErrUnreadable) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(src, "gone"))):
			t.Errorf("without SkipUnreadable: err %v; want ErrUnreadable naming %s", err, filepath.Join(src, "gone"))
		}
		if b.pool.open != 0 {
			t.Errorf("%d directory descriptors left open", b.pool.open)
		}
	}
}

// TestDirPoolReopen evicts directory descriptors (a budget of none) and
// reopens them from their parents: the same directory reopens, one
// replaced under its name meanwhile is refused, and nothing stays open.
func TestDirPoolReopen(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a/b/f": []byte("1")})
	stat := func(rel string) *unix.Stat_t {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(src, rel), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	p := &dirPool{max: 0}
	root := p.root(openDir(t, src))
	a := p.child(root, "a", "a", stat("a"))
	b := p.child(a, "b", "a/b", stat("a/b"))
	if _, err := p.pin(root); err != nil { // the walk of root, as in dirWalk.open
		t.Fatal(err)
	}
	p.handOff(root, 1) // done: a holds it
	if _, err := p.openNew(a); err != nil {
		t.Fatal(err)
	}
	p.handOff(a, 2) // b, and a file of a queued for a worker
	if _, err := p.openNew(b); err != nil {
		t.Fatal(err)
	}
	p.handOff(b, 1) // a file of b
	if a.fd >= 0 || b.fd >= 0 || p.open != 1 {
		t.Fatalf("with a budget of none, a (fd %d) and b (fd %d) stay open; %d open", a.fd, b.fd, p.open)
	}
	// b's file: b reopens from a, which reopens from the root.
	fd, err := p.pin(b)
	if err != nil {
		t.Fatalf("reopen a/b: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, "f", &st, 0); err != nil {
		t.Errorf("a/b reopened without its file f: %v", err)
	}
	p.done(b)
	// a is replaced by another directory under its name: a's file fails.
	if err := os.Rename(filepath.Join(src, "a"), filepath.Join(src, "a.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.pin(a); !errors.Is(err, errDirReplaced) {
		t.Errorf("reopen of a replaced a = %v; want errDirReplaced", err)
	}
	p.release(a)
	p.closeAll(root)
	if p.open != 0 {
		t.Errorf("%d descriptors open after closeAll", p.open)
	}
}
