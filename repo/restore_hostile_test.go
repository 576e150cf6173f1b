package repo_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// Hostile snapshots and hostile targets: what a restore may and may not do
// to anything outside its target.

// storeTrees stores tree blobs of exactly these bytes (the first is the
// root; repeats are stored once) and a snapshot of the root, with
// storeDeclared; it returns the snapshot ID. Open a Repository after it to
// see them. The snapshot declares more than these trees can hold (a
// restore refuses trees holding more than their snapshot declares, not
// less) and less than any restore's limits.
func storeTrees(t *testing.T, st store.Store, trees ...[]byte) chunk.ID {
	t.Helper()
	var unique [][]byte
	seen := make(map[chunk.ID]bool)
	for _, data := range trees[1:] {
		if id := chunk.Hash(data); !seen[id] && id != chunk.Hash(trees[0]) {
			seen[id] = true
			unique = append(unique, data)
		}
	}
	plenty := manifest.Summary{Files: 1 << 16, Dirs: 1 << 16, Symlinks: 1 << 16, Other: 1 << 16, Bytes: 1 << 30}
	return storeDeclared(t, st, nil, append(unique, trees[0]), plenty)
}

// inodeState describes the entry at path at the stat level: type, mode,
// owner, mtime, size, link count, every xattr (all namespaces) and the
// content or symlink target, for checks that a restore left it alone.
func inodeState(t testing.TB, path string) string {
	t.Helper()
	return describeInode(t, path, true)
}

// describeInode is inodeState, with or without the link count.
func describeInode(t testing.TB, path string, nlink bool) string {
	t.Helper()
	var st unix.Stat_t
	mustDo(t, unix.Lstat(path, &st))
	var b strings.Builder
	fmt.Fprintf(&b, "type=%#o mode=%#o uid=%d gid=%d mtime=%d size=%d",
		st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Nano(), st.Size)
	if nlink {
		fmt.Fprintf(&b, " nlink=%d", st.Nlink)
	}
	for _, name := range allXattrs(t, path) {
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(path, name, v)
		mustDo(t, err)
		fmt.Fprintf(&b, " %s=%x", name, v[:n])
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data, err := os.ReadFile(path)
		mustDo(t, err)
		fmt.Fprintf(&b, " sha256=%x", sha256.Sum256(data))
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		mustDo(t, err)
		fmt.Fprintf(&b, " target=%q", target)
	}
	return b.String()
}

// allXattrs lists the xattr names of path (not following a symlink),
// sorted; none where the filesystem has no xattrs.
func allXattrs(t testing.TB, path string) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	mustDo(t, err)
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return names
}

func sameInode(t testing.TB, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	mustDo(t, unix.Lstat(a, &sa))
	mustDo(t, unix.Lstat(b, &sb))
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// restoreDelete restores in place into a directory that may not be one
// sandsnap restored before (Delete: make it the snapshot regardless).
func restoreDelete(t testing.TB, r *repo.Repository, id chunk.ID, dst string, untrusted bool) (repo.RestoreStats, error) {
	t.Helper()
	return r.Restore(context.Background(), id, dst, repo.RestoreOptions{Delete: true, Untrusted: untrusted})
}

// TestRestoreOutsideHardLink (issue 11, #1, plain form): a backup of a
// hard-link group, restored in place over a target where one name of the
// group is a hard link to a file outside the target with the same content
// and mtime. The outside file must keep its mode, xattrs and link count,
// and the group must end up a new inode of its own.
func TestRestoreOutsideHardLink(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	content := []byte("shared by two names\n")
	writeFile(t, filepath.Join(src, "a"), content)
	mustDo(t, os.Mkdir(filepath.Join(src, "sub"), 0o755))
	mustDo(t, os.Link(filepath.Join(src, "a"), filepath.Join(src, "sub/b")))
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	mustDo(t, os.Chtimes(filepath.Join(src, "a"), mtime, mtime))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})

	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	restoreOK(t, r, h.ID, dst)
	outside := filepath.Join(parent, "outside")
	writeFile(t, outside, content)
	mustDo(t, os.Chmod(outside, 0o600))
	if err := unix.Lsetxattr(outside, "user.mine", []byte("outside"), 0); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatal(err)
	}
	mustDo(t, os.Chtimes(outside, mtime, mtime))
	before := inodeState(t, outside)
	mustDo(t, os.Remove(filepath.Join(dst, "a")))
	mustDo(t, os.Link(outside, filepath.Join(dst, "a")))

	if _, err := restoreDelete(t, r, h.ID, dst, false); err != nil {
		t.Fatal(err)
	}
	if after := inodeState(t, outside); after != before {
		t.Errorf("the outside file changed:\nbefore %s\nafter  %s", before, after)
	}
	sameTree(t, src, dst)
	if sameInode(t, outside, filepath.Join(dst, "a")) || sameInode(t, outside, filepath.Join(dst, "sub/b")) {
		t.Error("a name of the group is still the outside inode")
	}
}

// TestRestoreOutsideHardLinkHostile (issue 11, #1, hostile form): a
// snapshot whose link group names a file that, in the target, is a hard
// link to a root-owned 0644 file outside it, with that file's content and
// mtime, and says 04777 owned by 65534. The outside file must not change.
func TestRestoreOutsideHardLinkHostile(t *testing.T) {
	t.Parallel()
	content := []byte("root:x:0:0:root:/root:/bin/sh\n")
	mtime := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	st := mem.New()
	r := newTestRepo(t, st, repo.Options{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "payload"), content) // puts the blob in the repository
	backupOf(t, r, src, repo.BackupOptions{})
	hostile := func(name string) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeFile, Mode: 0o4777, UID: 65534, GID: 65534,
			MtimeNs: mtime.UnixNano(), Size: uint64(len(content)), Content: []chunk.ID{chunk.Hash(content)}, LinkID: 7}
	}
	id := storeTrees(t, st, encodeTree(t, hostile("passwd"), hostile("zz")))
	r, err := repo.Open(context.Background(), st, repo.Options{})
	mustDo(t, err)

	parent := t.TempDir()
	outside := filepath.Join(parent, "etc-passwd")
	writeFile(t, outside, content)
	mustDo(t, os.Chmod(outside, 0o644))
	if os.Geteuid() == 0 {
		mustDo(t, os.Chown(outside, 0, 0))
	}
	mustDo(t, os.Chtimes(outside, mtime, mtime))
	before := inodeState(t, outside)
	dst := filepath.Join(parent, "dst")
	mustDo(t, os.Mkdir(dst, 0o755))
	mustDo(t, os.Link(outside, filepath.Join(dst, "passwd")))

	if _, err := restoreDelete(t, r, id, dst, false); err != nil {
		t.Fatal(err)
	}
	if after := inodeState(t, outside); after != before {
		t.Errorf("the outside file changed:\nbefore %s\nafter  %s", before, after)
	}
	if !sameInode(t, filepath.Join(dst, "passwd"), filepath.Join(dst, "zz")) || sameInode(t, outside, filepath.Join(dst, "zz")) {
		t.Error("the group's names are not one new inode")
	}
	fi, err := os.Lstat(filepath.Join(dst, "passwd"))
	mustDo(t, err)
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("restored group has mode %v; want the snapshot's 04777", fi.Mode())
	}
}

// TestRestoreOutsideLinkedSpecial: an existing symlink or FIFO with the
// snapshot's type and target but a second link (from outside the target)
// is replaced, not given the snapshot's owner and mtime.
func TestRestoreOutsideLinkedSpecial(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	mustDo(t, os.Symlink("target", filepath.Join(src, "sym")))
	mustDo(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})

	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	mustDo(t, os.Mkdir(dst, 0o755))
	for _, name := range []string{"sym", "fifo"} {
		outside := filepath.Join(parent, "outside-"+name)
		if name == "sym" {
			mustDo(t, os.Symlink("target", outside))
		} else {
			mustDo(t, unix.Mkfifo(outside, 0o600))
		}
		old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		mustDo(t, unix.Lutimes(outside, []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))
		before := inodeState(t, outside)
		mustDo(t, os.Link(outside, filepath.Join(dst, name)))
		t.Cleanup(func() {
			if after := inodeState(t, outside); after != before {
				t.Errorf("%s outside changed:\nbefore %s\nafter  %s", name, before, after)
			}
		})
	}
	if _, err := restoreDelete(t, r, h.ID, dst, false); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
}

// TestRestoreForeignXattrs: a snapshot may carry xattrs of any name (the
// format allows them; backup records only storedXattr's). A restore sets
// only the namespaces sandsnap restores and reports the rest.
func TestRestoreForeignXattrs(t *testing.T) {
	t.Parallel()
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	file := manifest.Node{Name: "f", Type: manifest.TypeFile, Mode: 0o644, UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()),
		Xattrs: []manifest.Xattr{
			{Name: "trusted.overlay.opaque", Value: []byte("y")},
			{Name: "security.selinux", Value: []byte("system_u:object_r:shadow_t:s0")},
			{Name: "user.ok", Value: []byte("1")},
		}}
	id := storeTrees(t, st, encodeTree(t, file))
	r, err := repo.Open(context.Background(), st, repo.Options{})
	mustDo(t, err)
	dst := t.TempDir()
	s, err := r.Restore(context.Background(), id, dst, repo.RestoreOptions{})
	mustDo(t, err)
	names := allXattrs(t, filepath.Join(dst, "f"))
	if slices.Contains(names, "trusted.overlay.opaque") || slices.Contains(names, "security.selinux") {
		t.Errorf("restore set xattrs outside the restorable namespaces: %v", names)
	}
	want := []repo.Skipped{
		{Path: "f", Reason: "xattr security.selinux not restored: a namespace sandsnap does not restore"},
		{Path: "f", Reason: "xattr trusted.overlay.opaque not restored: a namespace sandsnap does not restore"},
	}
	if len(names) == 0 { // no user xattrs here either
		want = append(want, repo.Skipped{Path: "f", Reason: "xattr user.ok not restored: not supported here"})
	}
	if !slices.Equal(s.Skipped, want) {
		t.Errorf("Skipped = %v; want %v", s.Skipped, want)
	}
}

// The immutable and append-only bits of FS_IOC_SETFLAGS
// (include/uapi/linux/fs.h).
const (
	fsImmutableFL = 0x10
	fsAppendFL    = 0x20
)

// setInodeFlag sets (on) or clears an inode flag of path, or skips the
// test where it cannot be set (not root, a filesystem without it).
func setInodeFlag(t *testing.T, path string, flag uint32, on bool) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	mustDo(t, err)
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err == nil {
		if on {
			flags |= flag
		} else {
			flags &^= flag
		}
		err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags))
	}
	switch {
	case err == nil:
	case on:
		t.Skipf("cannot set inode flags (needs root and a filesystem with chattr flags): %v", err)
	default:
		t.Errorf("clear the flags of %s: %v", path, err)
	}
}

// TestRestoreImmutable (issue 11, #9): an entry the restore must remove but
// cannot because of chattr +i or +a is reported as such, with its path,
// not as "not a directory".
func TestRestoreImmutable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("setting immutable and append-only flags needs root (CAP_LINUX_IMMUTABLE)")
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "keep"), []byte("kept"))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	tests := []struct {
		name    string
		make    string // the path to create below the target, a directory if it ends in "/"
		flagged string // the path whose flags are set
		flag    uint32
		want    string
	}{
		{"immutable file", "locked", "locked", fsImmutableFL, `"locked": remove: operation not permitted: the entry is immutable`},
		{"append-only file", "log", "log", fsAppendFL, `"log": remove: operation not permitted: the entry is append-only`},
		{"immutable directory", "d/inner", "d", fsImmutableFL, `"d/inner": remove: operation not permitted: its directory is immutable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			writeFile(t, filepath.Join(dst, tt.make), []byte("stays"))
			flagged := filepath.Join(dst, tt.flagged)
			setInodeFlag(t, flagged, tt.flag, true)
			t.Cleanup(func() { setInodeFlag(t, flagged, tt.flag, false) })
			_, err := restoreDelete(t, r, h.ID, dst, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, fs.ErrPermission) {
				t.Errorf("restore over %s: %v; want an error containing %s", tt.flagged, err, tt.want)
			}
		})
	}
}
