package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/mem"
)

// POSIX ACLs and file capabilities, as raw xattr bytes (the kernel's
// format: include/uapi/linux/posix_acl_xattr.h, capability.h), so that the
// tests need no tools.

// ACL entry tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// rawACL encodes entries, which must be in the kernel's order (by tag,
// then id), as a system.posix_acl_* value.
func rawACL(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

const undefinedID = 0xffffffff // ACL_UNDEFINED_ID, the id of the *_OBJ, mask and other entries

// fileACL: the owner rw-, user 1234 rw-, the owning group r--, mask rw-,
// others nothing. The mode's group bits are the mask: rw-, 0660.
var fileACL = rawACL(
	aclEntry{aclUserObj, 6, undefinedID},
	aclEntry{aclUser, 6, 1234},
	aclEntry{aclGroupObj, 4, undefinedID},
	aclEntry{aclMask, 6, undefinedID},
	aclEntry{aclOther, 0, undefinedID},
)

// dirDefaultACL: what files created in the directory inherit: user 1234
// rwx, group 99 r-x.
var dirDefaultACL = rawACL(
	aclEntry{aclUserObj, 7, undefinedID},
	aclEntry{aclUser, 7, 1234},
	aclEntry{aclGroupObj, 5, undefinedID},
	aclEntry{aclGroup, 5, 99},
	aclEntry{aclMask, 7, undefinedID},
	aclEntry{aclOther, 0, undefinedID},
)

const (
	xACL     = "system.posix_acl_access"
	xDefault = "system.posix_acl_default"
	xCap     = "security.capability"
)

// setXattrOrSkip sets a raw xattr, skipping the test where the filesystem
// or the privileges do not allow it.
func setXattrOrSkip(t *testing.T, path, name string, value []byte, why string) {
	t.Helper()
	if err := unix.Lsetxattr(path, name, value, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) {
			t.Skipf("cannot set %s on %s (%s): %v", name, path, why, err)
		}
		t.Fatal(err)
	}
}

// getXattr returns the raw value of name on path, or nil without it.
func getXattr(t *testing.T, path, name string) []byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(path, name, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	mustDo(t, err)
	return buf[:n]
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	mustDo(t, err)
	return fi.Mode()
}

// aclSource builds a tree with an access ACL on a file and a default ACL
// on a directory, or skips where the filesystem has no ACLs.
func aclSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "shared.txt"), []byte("for user 1234 too"))
	mustDo(t, os.Mkdir(filepath.Join(src, "inbox"), 0o750))
	setXattrOrSkip(t, filepath.Join(src, "shared.txt"), xACL, fileACL, "a filesystem with POSIX ACLs")
	setXattrOrSkip(t, filepath.Join(src, "inbox"), xDefault, dirDefaultACL, "a filesystem with POSIX ACLs")
	if m := modeOf(t, filepath.Join(src, "shared.txt")).Perm(); m != 0o660 {
		t.Fatalf("setting the ACL left mode %v; want the mask in the group bits, 0660", m)
	}
	return src
}

// TestRestoreACLRoundTrip (issue 11, #2): an access ACL with a named user
// and a mask, and a default ACL on a directory, come back byte for byte,
// with the modes, in a fresh target and in place over stale ones.
func TestRestoreACLRoundTrip(t *testing.T) {
	t.Parallel()
	src := aclSource(t)
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := filepath.Join(t.TempDir(), "dst")
	s := restoreOK(t, r, h.ID, dst)
	if len(s.Skipped) != 0 {
		t.Errorf("Skipped = %v; want nothing", s.Skipped)
	}
	check := func(when string) {
		t.Helper()
		sameTree(t, src, dst)
		for _, c := range []struct{ rel, name string }{{"shared.txt", xACL}, {"inbox", xDefault}, {"inbox", xACL}} {
			if got, want := getXattr(t, filepath.Join(dst, c.rel), c.name), getXattr(t, filepath.Join(src, c.rel), c.name); !bytes.Equal(got, want) {
				t.Errorf("%s: %s %s = %x; want %x", when, c.rel, c.name, got, want)
			}
		}
	}
	check("fresh restore")

	// In place: the ACL removed from the file, an ACL the snapshot lacks
	// added to the directory, and a new file inheriting a default ACL.
	mustDo(t, unix.Removexattr(filepath.Join(dst, "shared.txt"), xACL))
	mustDo(t, os.Chmod(filepath.Join(dst, "shared.txt"), 0o600))
	mustDo(t, unix.Setxattr(filepath.Join(dst, "inbox"), xACL, rawACL(
		aclEntry{aclUserObj, 7, undefinedID}, aclEntry{aclUser, 7, 4321}, aclEntry{aclGroupObj, 5, undefinedID},
		aclEntry{aclMask, 7, undefinedID}, aclEntry{aclOther, 5, undefinedID}), 0))
	if _, err := restoreDelete(t, r, h.ID, dst, false); err != nil {
		t.Fatal(err)
	}
	check("in-place restore")
}

// TestRestoreInheritedACL: a file the restore creates in an existing
// directory with a default ACL inherits that ACL from the kernel; the
// snapshot's file has none (and the snapshot's directory no default ACL),
// so both must be removed, or user 1234 keeps what the mask allows.
func TestRestoreInheritedACL(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d/new.txt"), []byte("group-writable, no ACL"))
	mustDo(t, os.Chmod(filepath.Join(src, "d/new.txt"), 0o660))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := t.TempDir()
	mustDo(t, os.Mkdir(filepath.Join(dst, "d"), 0o755))
	setXattrOrSkip(t, filepath.Join(dst, "d"), xDefault, dirDefaultACL, "a filesystem with POSIX ACLs")

	if _, err := restoreDelete(t, r, h.ID, dst, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ rel, name string }{{"d/new.txt", xACL}, {"d", xDefault}, {"d", xACL}} {
		if v := getXattr(t, filepath.Join(dst, c.rel), c.name); v != nil {
			t.Errorf("%s keeps %s %x, which the snapshot lacks", c.rel, c.name, v)
		}
	}
	sameTree(t, src, dst)
}

// TestRestoreACLNotSet: where an ACL is not set, the group bits (the
// ACL's mask) are narrowed to what the owning group had, and the entry is
// reported: in an untrusted restore, and on a filesystem without ACLs
// (ramfs, mounted for the test as root).
func TestRestoreACLNotSet(t *testing.T) {
	t.Parallel()
	src := aclSource(t)
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	check := func(t *testing.T, dst string, s repo.RestoreStats, why string) {
		t.Helper()
		// group_obj r-- & mask rw- = r--: 0660 becomes 0640.
		if m := modeOf(t, filepath.Join(dst, "shared.txt")).Perm(); m != 0o640 {
			t.Errorf("mode %v; want 0640 (the owning group's r--)", m)
		}
		if v := getXattr(t, filepath.Join(dst, "shared.txt"), xACL); v != nil {
			t.Errorf("ACL set: %x", v)
		}
		want := []repo.Skipped{
			{Path: "inbox", Reason: "xattr system.posix_acl_default not restored: " + why},
			{Path: "shared.txt", Reason: "xattr system.posix_acl_access not restored: " + why + "; group permissions limited to the owning group's r--"},
		}
		var got []repo.Skipped
		for _, sk := range s.Skipped {
			if sk.Path != "." { // the owners line of an untrusted restore
				got = append(got, sk)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Skipped = %v; want %v", got, want)
		}
	}
	t.Run("untrusted", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "dst")
		s, err := r.Restore(context.Background(), h.ID, dst, repo.RestoreOptions{Untrusted: true})
		mustDo(t, err)
		check(t, dst, s, "untrusted")
	})
	t.Run("no ACL support", func(t *testing.T) {
		dst := ramfs(t)
		s := restoreOK(t, r, h.ID, dst)
		check(t, dst, s, "not supported here")
	})
}

// ramfs mounts a ramfs (a filesystem without xattrs) on a new temporary
// directory for the test, or skips.
func ramfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a ramfs (a filesystem without ACLs) needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("sandsnap-test", dir, "ramfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		t.Skipf("cannot mount a ramfs (a filesystem without ACLs): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Setxattr(dir, xDefault, dirDefaultACL, 0); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("ramfs here accepts ACLs (%v)", err)
	}
	return dir
}

// capNetBindService is a version 2 security.capability value granting
// cap_net_bind_service, permitted and effective: magic_etc, then
// {permitted, inheritable} for capabilities 0-31 and 32-63.
var capNetBindService = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
	binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
		binary.LittleEndian.AppendUint32(nil,
			0x02000000|1), // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
		1<<10), // permitted: CAP_NET_BIND_SERVICE
		0), 0), 0)

// TestRestoreCapability (issue 11, #2): as root, a file capability comes
// back on a file owned by someone else (chown would clear it if it came
// after), with setuid beside it; an untrusted restore drops both and says
// so.
func TestRestoreCapability(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("setting file capabilities and owners needs root")
	}
	src := t.TempDir()
	bin := filepath.Join(src, "server")
	writeFile(t, bin, []byte("#!/bin/sh\nexec nc -l 80\n"))
	mustDo(t, os.Chown(bin, 1000, 1000))
	setXattrOrSkip(t, bin, xCap, capNetBindService, "file capabilities")
	writeFile(t, filepath.Join(src, "suid"), []byte("setuid"))
	mustDo(t, os.Chown(filepath.Join(src, "suid"), 1000, 1000))
	mustDo(t, unix.Chmod(filepath.Join(src, "suid"), 0o4755)) // os.Chmod would want os.ModeSetuid
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})

	dst := filepath.Join(t.TempDir(), "dst")
	s := restoreOK(t, r, h.ID, dst)
	sameTree(t, src, dst)
	if got := getXattr(t, filepath.Join(dst, "server"), xCap); !bytes.Equal(got, capNetBindService) {
		t.Errorf("capability = %x; want %x", got, capNetBindService)
	}
	if len(s.Skipped) != 0 {
		t.Errorf("Skipped = %v; want nothing", s.Skipped)
	}

	udst := filepath.Join(t.TempDir(), "udst")
	s, err := r.Restore(context.Background(), h.ID, udst, repo.RestoreOptions{Untrusted: true})
	mustDo(t, err)
	if v := getXattr(t, filepath.Join(udst, "server"), xCap); v != nil {
		t.Errorf("untrusted restore set a capability: %x", v)
	}
	if m := modeOf(t, filepath.Join(udst, "suid")); m&os.ModeSetuid != 0 || m.Perm() != 0o755 {
		t.Errorf("untrusted restore left mode %v; want 0755", m)
	}
	want := []repo.Skipped{
		{Path: ".", Reason: "owners not restored (untrusted): entries belong to uid 0"},
		{Path: "server", Reason: "xattr security.capability not restored: untrusted"},
		{Path: "suid", Reason: "setuid/setgid bits not restored (untrusted)"},
	}
	if !slices.Equal(s.Skipped, want) {
		t.Errorf("untrusted Skipped = %v; want %v", s.Skipped, want)
	}
}

// TestRestoreUntrustedOwners: an untrusted restore gives every entry to
// the restoring user: it never chowns, and an existing entry of another
// owner is replaced rather than kept, even when its content matches.
func TestRestoreUntrustedOwners(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("making entries of other owners needs root")
	}
	src := inPlaceSource(t)
	for _, rel := range []string{"a.txt", "d", "d/c.txt", "link"} {
		mustDo(t, os.Lchown(filepath.Join(src, rel), 1000, 1000))
	}
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := t.TempDir()
	restoreOK(t, r, h.ID, dst) // trusted: the owners of src
	var before unix.Stat_t
	mustDo(t, unix.Lstat(filepath.Join(dst, "a.txt"), &before))

	s, err := restoreDelete(t, r, h.ID, dst, true)
	mustDo(t, err)
	mustDo(t, filepath.Walk(dst, func(p string, _ os.FileInfo, err error) error {
		if err != nil || p == dst {
			return err
		}
		var st unix.Stat_t
		mustDo(t, unix.Lstat(p, &st))
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s is owned by %d:%d after an untrusted restore by root", strings.TrimPrefix(p, dst), st.Uid, st.Gid)
		}
		return nil
	}))
	var after unix.Stat_t
	mustDo(t, unix.Lstat(filepath.Join(dst, "a.txt"), &after))
	if after.Ino == before.Ino {
		t.Error("a.txt of uid 1000 was kept (and given to root by chown?), not replaced")
	}
	// b.bin is root's and kept; a.txt, link and all of d (uid 1000) are
	// new, d's contents with it.
	if s.FilesUnchanged != 1 || s.Removed != 6 {
		t.Errorf("unchanged %d, removed %d; want 1 (b.bin) and 6 (link, d and its 4 entries)", s.FilesUnchanged, s.Removed)
	}
	want := []repo.Skipped{{Path: ".", Reason: "owners not restored (untrusted): entries belong to uid 0"}}
	if !slices.Equal(s.Skipped, want) {
		t.Errorf("Skipped = %v; want %v", s.Skipped, want)
	}
}
