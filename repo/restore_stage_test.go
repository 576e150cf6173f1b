package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/store"
)

// hookStore calls hook (once) before the first Load of one of packs: the
// data phase of a restore has begun, its structure pass is done.
type dataHookStore struct {
	store.Store
	packs map[string]bool
	once  *sync.Once
	hook  func()
}

func (s dataHookStore) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if s.packs[name] {
		s.once.Do(s.hook)
	}
	return s.Store.Load(ctx, name, offset, length, fn)
}

// dataPacks returns the names of the packs holding snapshot id's file data.
func dataPacks(t *testing.T, r *Repository, id chunk.ID) map[string]bool {
	t.Helper()
	ctx := context.Background()
	snap, err := r.Snapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	packs := make(map[string]bool)
	err = manifest.Walk(ctx, r.loadTree, snap.Tree, func(_ string, n *manifest.Node) error {
		for _, c := range n.Content {
			e, ok := r.idx.lookup(c)
			if !ok {
				return fmt.Errorf("chunk %s not indexed", c.Str())
			}
			packs[packName(e.Pack)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

// cancelInData opens r's repository again over a store that runs hook and
// then cancels the returned context when the data phase of a restore of
// id begins.
func cancelInData(t *testing.T, r *Repository, id chunk.ID, hook func()) (*Repository, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := dataHookStore{Store: r.st, packs: dataPacks(t, r, id), once: new(sync.Once), hook: func() { hook(); cancel() }}
	rc, err := Open(context.Background(), st, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	return rc, ctx
}

func sameAs(t *testing.T, want, got string) {
	t.Helper()
	diffs, err := fstree.CompareWith(want, got, fstree.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s differs from %s: %s", got, want, d)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// TestRestoreCancelledNewTarget: a restore into a new directory, cancelled
// in its data phase, leaves no directory under the target's name and no
// staging directory; the retry restores it.
func TestRestoreCancelledNewTarget(t *testing.T) {
	t.Parallel()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, textFiles(3, 30))
	h, err := r.Backup(context.Background(), src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	var during []string
	rc, ctx := cancelInData(t, r, h.ID, func() { during = names(t, parent) })
	_, err = rc.Restore(ctx, h.ID, dst, RestoreOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: %v; want context.Canceled", err)
	}
	if len(during) != 1 || !strings.HasPrefix(during[0], ".dst.sandsnap-") {
		t.Errorf("during the data phase the parent held %q; want one staging directory", during)
	}
	if got := names(t, parent); len(got) != 0 {
		t.Errorf("cancelled restore left %q", got)
	}
	if _, err := r.Restore(context.Background(), h.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameAs(t, src, dst)
	if got := names(t, parent); !slices.Equal(got, []string{"dst"}) {
		t.Errorf("after the restore the parent holds %q", got)
	}
}

// readMarkerFile returns the marker in dir, failing the test without one.
func readMarkerFile(t *testing.T, dir string) restoreMarker {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		t.Fatalf("marker: %v", err)
	}
	var m restoreMarker
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("marker %q: %v", data, err)
	}
	return m
}

// TestRestoreCancelledInPlace: a restore in place, cancelled in its data
// phase, leaves the marker (which Backup refuses and DirStatus reports),
// the old files whole and none of its temporary or unfinished files; the
// next restore finishes it and removes the marker.
func TestRestoreCancelledInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newCachedRepo(t)
	oldSrc, newSrc := t.TempDir(), t.TempDir()
	oldFiles := textFiles(4, 20)
	writeTree(t, oldSrc, oldFiles)
	newFiles := textFiles(5, 20)
	newFiles["new/big2.bin"] = bytes.Repeat([]byte("new data "), 300<<10)
	writeTree(t, newSrc, newFiles)
	h1, err := r.Backup(ctx, oldSrc, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := r.Backup(ctx, newSrc, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Restore(ctx, h1.ID, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}

	var during restoreMarker
	rc, cctx := cancelInData(t, r, h2.ID, func() { during = readMarkerFile(t, dst) })
	if _, err := rc.Restore(cctx, h2.ID, dst, RestoreOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: %v; want context.Canceled", err)
	}
	if m := readMarkerFile(t, dst); m != during || m.Snapshot != h2.ID || m.PID != os.Getpid() || m.Host != r.opts.Host || time.Since(m.Started) > time.Hour {
		t.Errorf("marker after the cancel %+v (during: %+v); want snapshot %s, this process and host", m, during, h2.ID.Str())
	}
	for name, data := range oldFiles {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s after the cancelled restore: %d bytes, %v; want the old %d bytes", name, len(got), err, len(data))
		}
	}
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != markerName && oldFiles[strings.TrimPrefix(p, dst+"/")] == nil {
			t.Errorf("the cancelled restore left %s", p)
		}
		return err
	})

	_, err = r.Backup(ctx, dst, BackupOptions{})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), h2.ID.String()) || strings.Contains(err.Error(), "\n") {
		t.Errorf("backup of the half-restored directory: %v; want ErrIncomplete naming snapshot %s", err, h2.ID.Str())
	}
	s, err := r.DirStatus(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	in := s.Incomplete
	if s.State != DirIncomplete || in == nil || in.Snapshot != h2.ID || in.PID != os.Getpid() || !in.PIDAlive || in.Running ||
		s.Record == nil || s.Record.Snapshot != h1.ID || !s.Record.SnapshotExists {
		t.Errorf("status %+v, incomplete %+v; want incomplete (snapshot %s, this process, not running), recorded %s", s, in, h2.ID.Str(), h1.ID.Str())
	}

	st, err := r.Restore(ctx, h2.ID, dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameAs(t, newSrc, dst)
	if _, err := os.Lstat(filepath.Join(dst, markerName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker after the finished restore: %v", err)
	}
	if st.FilesWritten != h2.Stats.Files {
		t.Errorf("finishing restore wrote %d files; want %d", st.FilesWritten, h2.Stats.Files)
	}
	if s, err := r.DirStatus(ctx, dst); err != nil || s.State != DirTracked || s.Incomplete != nil || s.Record.Snapshot != h2.ID {
		t.Errorf("status after the finished restore: %+v, %v; want tracked, snapshot %s", s, err, h2.ID.Str())
	}
	if _, err := r.Backup(ctx, dst, BackupOptions{}); err != nil {
		t.Errorf("backup after the finished restore: %v", err)
	}
}

// TestRestoreEmptyTargetKeepsItsOwn: an empty target is replaced by the
// staged restore (a new inode), but keeps its own mode, times, xattrs and
// (as root) owner: the root's metadata is never the snapshot's.
func TestRestoreEmptyTargetKeepsItsOwn(t *testing.T) {
	t.Parallel()
	r, id, src := smallSnapshot(t, Options{})
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(dst, 0o2751); err != nil {
		t.Fatal(err)
	}
	xattr := unix.Lsetxattr(dst, "user.sandsnap-test", []byte("kept"), 0)
	if xattr != nil {
		t.Logf("no user xattrs here (%v): not checked", xattr)
	}
	owner := os.Geteuid() == 0
	if owner {
		if err := os.Chown(dst, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	stamp := time.Date(2020, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chtimes(dst, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Lstat(dst, &before); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(context.Background(), id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var after unix.Stat_t
	if err := unix.Lstat(dst, &after); err != nil {
		t.Fatal(err)
	}
	sameAs(t, src, dst) // after the stat: reading the target moves its atime
	if after.Ino == before.Ino {
		t.Errorf("the target has its old inode: not staged")
	}
	// (Its atime is not compared: reading a directory moves it.)
	if after.Mode != before.Mode || after.Mtim != before.Mtim {
		t.Errorf("target mode %o, mtime %v; want %o, %v", after.Mode, after.Mtim, before.Mode, before.Mtim)
	}
	if owner && (after.Uid != 1234 || after.Gid != 5678) {
		t.Errorf("target owner %d:%d; want 1234:5678", after.Uid, after.Gid)
	}
	if xattr == nil {
		buf := make([]byte, 16)
		n, err := unix.Lgetxattr(dst, "user.sandsnap-test", buf)
		if err != nil || string(buf[:n]) != "kept" {
			t.Errorf("target xattr: %q, %v; want kept", buf[:max(n, 0)], err)
		}
	}
}

// deadPID returns the ID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no /bin/true to make a dead process ID: %v", err)
	}
	pid := cmd.Process.Pid
	if pidAlive(pid) {
		t.Skipf("process ID %d was reused at once", pid)
	}
	return pid
}

// TestRestoreStaleStaging: staging directories left by a killed restore
// (its process is gone, its lock free) are removed by the next restore
// into the same target; those of live or locked restores, and other
// names, are not.
func TestRestoreStaleStaging(t *testing.T) {
	t.Parallel()
	r, id, src := smallSnapshot(t, Options{})
	parent := t.TempDir()
	dead := deadPID(t)
	stale := fmt.Sprintf(".dst.sandsnap-%d-0123456789abcdef", dead)
	locked := fmt.Sprintf(".dst.sandsnap-%d-00000000000000aa", dead)
	keep := []string{
		locked,
		".dst.sandsnap-1-0123456789abcdef", // PID 1 is alive
		fmt.Sprintf(".other.sandsnap-%d-0123456789abcdef", dead), // another target's
		fmt.Sprintf(".dst.sandsnap-%d-notrandom", dead),          // not a staging name
	}
	for _, n := range append([]string{stale}, keep...) {
		writeTree(t, filepath.Join(parent, n), map[string][]byte{"half/file": []byte("partial")})
	}
	if err := os.Chmod(filepath.Join(parent, stale, "half"), 0o500); err != nil {
		t.Fatal(err)
	}
	lock, err := os.Open(filepath.Join(parent, locked))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(parent, "dst")
	if _, err := r.Restore(context.Background(), id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameAs(t, src, dst)
	want := append([]string{"dst"}, keep...)
	slices.Sort(want)
	if got := names(t, parent); !slices.Equal(got, want) {
		t.Errorf("after the restore the parent holds %q; want %q", got, want)
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h (x/sys/unix lacks it).
const fsImmutableFL = 0x10

// readOnlyParent makes dir's own entries unchangeable, the directories in
// it still writable: FS_IMMUTABLE_FL as root (skipped where the
// filesystem lacks it), mode 0555 otherwise.
func readOnlyParent(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err == nil {
		err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsImmutableFL)
	}
	if err != nil {
		t.Skipf("cannot make %s immutable here: %v", dir, err)
	}
	t.Cleanup(func() {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err == nil {
			err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags)
			unix.Close(fd)
		}
		if err != nil {
			t.Errorf("clear the immutable flag of %s: %v", dir, err)
		}
	})
}

// TestRestoreUnwritableParent: an empty target whose parent takes no new
// entries cannot be staged beside it, so it is restored in place (its own
// inode, the marker gone at the end).
func TestRestoreUnwritableParent(t *testing.T) {
	t.Parallel()
	r, id, src := smallSnapshot(t, Options{})
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Stat(dst, &before); err != nil {
		t.Fatal(err)
	}
	readOnlyParent(t, parent)
	if _, err := r.Restore(context.Background(), id, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameAs(t, src, dst)
	var after unix.Stat_t
	if err := unix.Stat(dst, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("the target was replaced: not restored in place")
	}
	if got := names(t, parent); !slices.Equal(got, []string{"dst"}) {
		t.Errorf("the parent holds %q", got)
	}
}
