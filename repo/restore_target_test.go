package repo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/store/mem"
)

// statEntry is what statTree records of one entry: enough to see that
// nothing was written, created, removed, renamed, chmodded or chowned
// (every such change moves the ctime or the inode).
type statEntry struct {
	ino, size, nlink uint64
	mode, uid, gid   uint32
	mtime, ctime     int64
}

// statTree records every entry below dir (dir itself as ".").
func statTree(t *testing.T, dir string) map[string]statEntry {
	t.Helper()
	out := make(map[string]statEntry)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = statEntry{st.Ino, uint64(st.Size), uint64(st.Nlink), st.Mode, st.Uid, st.Gid, st.Mtim.Nano(), st.Ctim.Nano()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameStats fails the test where two statTree records differ.
func sameStats(t *testing.T, what string, before, after map[string]statEntry) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed: %+v, was %+v", what, p, a, b)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", what, p)
		}
	}
}

// smallSnapshot backs up a small tree and returns the repository, the
// snapshot and the source.
func smallSnapshot(t *testing.T, opts Options) (*Repository, chunk.ID, string) {
	t.Helper()
	r, err := Init(context.Background(), mem.New(), InitOptions{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a.txt": []byte("alpha"), "d/b.txt": []byte("beta"), "d/e/c.txt": []byte("gamma")})
	h, err := r.Backup(context.Background(), src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r, h.ID, src
}

// fakeRoot builds a small system tree to point targetPolicy at: system
// directories with files in them, places where work lives, /home as a
// symlink to var/home (as on Fedora Silverblue), and a workspace symlink
// that leads into /etc.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	for _, f := range []string{"etc/passwd", "etc/ssl/cert.pem", "boot/vmlinuz", "usr/share/doc/README", "usr/lib64/libc.so",
		"usr/local/bin/tool", "var/lib/dpkg/status", "var/home/alice/.profile", "tmp/.keep", "opt/vendor/x"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr/src", "workspace", "srv"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"home": "var/home", "workspace/conf": "../etc", "lib": "usr/lib64"} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRestoreTargetPolicy: the root, system directories (themselves, and
// what is below the ones that hold only the system's files) and the
// user's home are refused whatever the options say, on the resolved
// target, and nothing is touched; the places where work lives are not.
func TestRestoreTargetPolicy(t *testing.T) {
	t.Parallel()
	r, id, src := smallSnapshot(t, Options{CacheDir: t.TempDir()})
	root := fakeRoot(t)
	policy := targetPolicy{root: root, home: filepath.Join(root, "home/alice")}
	refused := []struct{ target, why string }{
		{"", "the root of the filesystem"},
		{"etc", "the system's configuration"},
		{"etc/ssl", "the system's configuration"},
		{"etc/new/deeper", "the system's configuration"}, // missing: its deepest existing ancestor decides
		{"boot", "the kernel"},
		{"usr", "system hierarchy"},
		{"usr/local", "system hierarchy"},
		{"usr/share/doc", "installed packages"},
		{"usr/lib64/x", "libraries"},
		{"usr/libexec", "programs"},
		{"lib/sub", "libraries"}, // through the symlink, into usr/lib64
		{"var", "system hierarchy"},
		{"var/lib", "installed programs"},
		{"tmp", "every user"},
		{"var/tmp", "every user"},
		{"opt", "optional software"},
		{"srv", "serves"},
		{"home", "every user's home"}, // a symlink to var/home: refused as /home
		{"var/home", "every user's home"},
		{"home/alice", "your home directory"},
		{"workspace/conf", "the system's configuration"}, // a symlink into /etc
		{"workspace/conf/app", "the system's configuration"},
		{"proc/1", "a kernel filesystem"},
	}
	before := statTree(t, root)
	for _, tt := range refused {
		target := filepath.Join(root, tt.target)
		for _, opts := range []RestoreOptions{{}, {Delete: true}, {DryRun: true}} {
			opts.policy = policy
			_, err := r.Restore(context.Background(), id, target, opts)
			if !errors.Is(err, ErrTargetRefused) {
				t.Errorf("restore into %s (%+v): %v; want ErrTargetRefused", tt.target, opts, err)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, target) || !strings.Contains(msg, tt.why) || strings.Contains(msg, "\n") {
				t.Errorf("restore into %s: error %q; want one line naming %s and %q", tt.target, msg, target, tt.why)
			}
		}
	}
	sameStats(t, "refused restores", before, statTree(t, root))

	for _, ok := range []string{"workspace/project", "usr/src/app", "home/alice/work", "var/home/bob", "tmp/box", "var/tmp/box",
		"opt/vendor", "srv/site", "usr/local/app", "var/lib/app"} {
		target := filepath.Join(root, ok)
		if _, err := r.Restore(context.Background(), id, target, RestoreOptions{Delete: true, policy: policy}); err != nil {
			t.Errorf("restore into %s: %v", ok, err)
			continue
		}
		if diffs, err := fstree.CompareWith(src, target, fstree.Options{IgnoreRootMeta: true}); err != nil || len(diffs) > 0 {
			t.Errorf("restore into %s: %v %v", ok, diffs, err)
		}
	}
}

// TestRestoreTargetPolicyRealRoot: the real system list refuses / and
// /etc, by the same check and before anything is read or written. The
// check runs on the real paths, and nothing would be written if it failed
// to refuse: the target's state is only read by checkTarget.
func TestRestoreTargetPolicyRealRoot(t *testing.T) {
	t.Parallel()
	r, _, _ := smallSnapshot(t, Options{})
	for _, target := range []string{"/", "/etc", "/usr/bin/x", "/proc/self"} {
		_, err := r.checkTarget(target, RestoreOptions{Delete: true})
		if !errors.Is(err, ErrTargetRefused) {
			t.Errorf("checkTarget(%s) = %v; want ErrTargetRefused", target, err)
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "/" {
		t.Skipf("no home directory to check (%q, %v)", home, err)
	}
	if _, err := r.checkTarget(home, RestoreOptions{Delete: true}); !errors.Is(err, ErrTargetRefused) {
		t.Errorf("checkTarget($HOME %s) = %v; want ErrTargetRefused", home, err)
	}
}

// TestRestoreNonEmptyTarget: a non-empty directory that sandsnap has no
// record of is refused without Delete, and left as it was; one it
// restored or backed up on this host (its files cache), or one holding an
// unfinished restore's marker, is made identical; Delete allows the rest.
func TestRestoreNonEmptyTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, id, src := smallSnapshot(t, Options{CacheDir: t.TempDir()})
	same := func(t *testing.T, dir string) {
		t.Helper()
		if diffs, err := fstree.CompareWith(src, dir, fstree.Options{IgnoreRootMeta: true}); err != nil || len(diffs) > 0 {
			t.Errorf("%s after restore: %v %v", dir, diffs, err)
		}
	}
	untouched := filepath.Join(t.TempDir(), "mine")
	writeTree(t, untouched, map[string][]byte{"notes.txt": []byte("my notes"), "a.txt": []byte("mine")})
	before := statTree(t, untouched)
	_, err := r.Restore(ctx, id, untouched, RestoreOptions{})
	if !errors.Is(err, ErrTargetRefused) || !strings.Contains(err.Error(), untouched) || !strings.Contains(err.Error(), "--delete") {
		t.Errorf("restore into a non-empty directory: %v; want ErrTargetRefused naming it and suggesting --delete", err)
	}
	sameStats(t, "refused restore", before, statTree(t, untouched))
	if _, err := r.Restore(ctx, id, untouched, RestoreOptions{Delete: true}); err != nil {
		t.Fatal(err)
	}
	same(t, untouched)

	// Restored before (by the Delete run above, and by a fresh restore):
	// the files cache records it.
	fresh := filepath.Join(t.TempDir(), "fresh")
	for range 2 {
		if _, err := r.Restore(ctx, id, fresh, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, fresh, map[string][]byte{"extra": []byte("x")})
	if _, err := r.Restore(ctx, id, fresh, RestoreOptions{}); err != nil {
		t.Fatalf("restore into a directory restored before: %v", err)
	}
	same(t, fresh)

	// Backed up before: the same.
	backedUp := t.TempDir()
	writeTree(t, backedUp, map[string][]byte{"work.go": []byte("package work")})
	if _, err := r.Backup(ctx, backedUp, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(ctx, id, backedUp, RestoreOptions{}); err != nil {
		t.Fatalf("restore into a directory backed up before: %v", err)
	}
	same(t, backedUp)

	// An unfinished restore's marker.
	marked := t.TempDir()
	writeTree(t, marked, map[string][]byte{"half.txt": []byte("half"), markerName: []byte(`{"snapshot":"` + id.String() + `"}`)})
	if _, err := r.Restore(ctx, id, marked, RestoreOptions{}); err != nil {
		t.Fatalf("restore into a directory with a marker: %v", err)
	}
	same(t, marked)

	// Without a cache folder there is no record, so Delete is needed.
	nocache, err := Open(ctx, r.st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nocache.Restore(ctx, id, fresh, RestoreOptions{}); !errors.Is(err, ErrTargetRefused) || !strings.Contains(err.Error(), "cache folder") {
		t.Errorf("restore without a cache folder into a non-empty directory: %v; want ErrTargetRefused naming the cache folder", err)
	}
}
