package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// POSIX ACL entry tags, as the kernel's system.posix_acl_* values carry
// them (include/uapi/linux/posix_acl.h); aclGroupObj and aclMask are in
// restore_acl.go.
const (
	aclUserObj = 0x01
	aclUser    = 0x02
	aclOther   = 0x20
	aclNoID    = 0xffffffff
)

// aclValue encodes ACL entries (tag, permissions, id), sorted by tag and
// id, as the raw system.posix_acl_* xattr value (version 2).
func aclValue(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// A named user 1234 may read; the mask keeps the group at read.
var testACL = aclValue(
	[3]uint32{aclUserObj, 6, aclNoID},
	[3]uint32{aclUser, 4, 1234},
	[3]uint32{aclGroupObj, 4, aclNoID},
	[3]uint32{aclMask, 4, aclNoID},
	[3]uint32{aclOther, 0, aclNoID},
)

// setXattr sets an xattr by path and skips the test where the filesystem
// or the user cannot; it returns the value the filesystem reads back.
func setXattr(t *testing.T, p, name string, value []byte) []byte {
	t.Helper()
	if err := unix.Lsetxattr(p, name, value, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			t.Skipf("cannot set %s on %s here: %v", name, p, err)
		}
		t.Fatalf("setxattr %s %s: %v", p, name, err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func xattrOf(n *manifest.Node, name string) []byte {
	for _, x := range n.Xattrs {
		if x.Name == name {
			return x.Value
		}
	}
	return nil
}

// TestBackupRecordsACLs sets an access ACL on a file and a FIFO and a
// default ACL on a directory (raw system.posix_acl_* bytes), and, as
// root, a file capability; each must land in the snapshot's nodes on
// every path a backup takes: a file read by a worker (its descriptor), a
// directory (the walk's descriptor), a FIFO and a file taken over from the
// parent without a files cache (relative to the directory's descriptor),
// and a file the files cache vouches for (the parent's xattrs, no call).
func TestBackupRecordsACLs(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f.txt": []byte("acl"), "d/inside.txt": []byte("x"), "cap.bin": []byte("\x7fELF")})
	if err := unix.Mkfifo(filepath.Join(src, "d", "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string][]byte{
		{"f.txt", xattrACLAccess}:     setXattr(t, filepath.Join(src, "f.txt"), xattrACLAccess, testACL),
		{"d", xattrACLDefault}:        setXattr(t, filepath.Join(src, "d"), xattrACLDefault, testACL),
		{"d/pipe", xattrACLAccess}:    setXattr(t, filepath.Join(src, "d", "pipe"), xattrACLAccess, testACL),
		{"d/inside.txt", "user.note"}: setXattr(t, filepath.Join(src, "d", "inside.txt"), "user.note", []byte("kept")),
	}
	if os.Geteuid() == 0 {
		// VFS_CAP_REVISION_2 with the effective bit; permitted: CAP_NET_BIND_SERVICE.
		capv := binary.LittleEndian.AppendUint32(nil, 0x02000001)
		capv = binary.LittleEndian.AppendUint32(capv, 1<<unix.CAP_NET_BIND_SERVICE)
		capv = append(capv, make([]byte, 12)...)
		want[[2]string{"cap.bin", xattrCapability}] = setXattr(t, filepath.Join(src, "cap.bin"), xattrCapability, capv)
	} else {
		t.Log("not root: security.capability left out")
	}
	check := func(what string, r *Repository, id chunk.ID) {
		t.Helper()
		for k, v := range want {
			if got := xattrOf(nodeAt(t, r, id, k[0]), k[1]); !bytes.Equal(got, v) {
				t.Errorf("%s: %s of %s = %x; want %x", what, k[1], k[0], got, v)
			}
		}
	}

	r, _ := newTestRepo(t)
	h1, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("first backup", r, h1.ID)
	h2, err := r.Backup(ctx, src, BackupOptions{Parent: h1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if h2.Stats.FilesReused != h2.Stats.Files {
		t.Errorf("backup with a parent reused %d of %d files", h2.Stats.FilesReused, h2.Stats.Files)
	}
	check("files taken over from the parent", r, h2.ID)

	// With a files cache: the first backup writes it, the second finds
	// every file vouched for.
	_, ms := newTestRepo(t)
	rc, err := Open(ctx, ms, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := rc.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := rc.Backup(ctx, src, BackupOptions{AutoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Parent == nil || *c2.Parent != c1.ID || c2.Stats.FilesReused != c2.Stats.Files {
		t.Fatalf("backup with the files cache: parent %v, reused %d of %d; want %s, all", c2.Parent, c2.Stats.FilesReused, c2.Stats.Files, c1.ID.Str())
	}
	check("files the cache vouches for", rc, c2.ID)
}

// TestAtXattrsWithoutListxattrat reads the same xattrs through
// listxattrat and through /proc/self/fd, the path for kernels before 6.13.
func TestAtXattrsWithoutListxattrat(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"f": []byte("x")})
	want := setXattr(t, filepath.Join(dir, "f"), "user.a", bytes.Repeat([]byte("v"), 3000))
	setXattr(t, filepath.Join(dir, "f"), xattrACLAccess, testACL)
	r, _ := newTestRepo(t)
	fd := openDir(t, dir)
	defer unix.Close(fd)
	for _, noAt := range []bool{false, true} {
		b := newBackup(r, dir, BackupOptions{})
		b.noXattrat.Store(noAt)
		xs, err := storedXattrs(b.atXattrs(fd, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if len(xs) != 2 || xs[0].Name != xattrACLAccess || xs[1].Name != "user.a" || !bytes.Equal(xs[1].Value, want) {
			t.Errorf("without listxattrat %v: %d xattrs %v; want the ACL and user.a", noAt, len(xs), xs)
		}
	}
}
