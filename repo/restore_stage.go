package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// Where a restore writes. A target that is missing or empty is restored
// into a staging sibling, .<base>.sandsnap-<pid>-<random> in its parent,
// renamed into place at the end: until then nothing under the target's
// name looks restored, and a failed or cancelled restore removes the
// staging directory, leaving no directory there (or the empty one as it
// was). The root's own metadata is never the snapshot's: a new target
// gets a fresh directory's, an empty one keeps its own (owner, mode,
// times and xattrs such as default ACLs, copied to the staging directory
// before anything is created in it).
//
// A staging directory is flock'ed by its restore. A later restore into
// the same target removes the staging siblings whose process is gone (not
// alive, and the lock free), left by a restore that was killed.
//
// Everything else is restored in place, under the incomplete marker
// (restore_marker.go): a non-empty target, and an empty or missing one
// that cannot be staged (the parent is not writable, the target is a
// mount point, its xattrs cannot be copied, or its owner is another user
// and the restore is not root).

var (
	// errNoStaging: the target cannot be staged; nothing was done.
	errNoStaging = errors.New("cannot restore beside the target")
	// errStagedRename: the staged restore finished but cannot be renamed
	// into place (a mount point that statx did not reveal); the staging
	// directory was removed.
	errStagedRename = errors.New("cannot rename the staged restore into place")
)

// restoreTo restores into tgt, staged when it can be, after removing the
// stale staging siblings of earlier restores into it.
func (x *restorer) restoreTo(ctx context.Context, tgt *restoreTarget, id chunk.ID) error {
	if pfd, err := unix.Open(filepath.Dir(tgt.path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		x.removeStaleStaging(ctx, pfd, filepath.Base(tgt.path))
		unix.Close(pfd)
	}
	if !tgt.exists || tgt.empty {
		err := x.restoreStaged(ctx, tgt)
		if !errors.Is(err, errNoStaging) {
			return err
		}
		x.r.opts.Logf("restore %s in place: %v", tgt, err)
	}
	return x.restoreInPlace(ctx, tgt, id)
}

// restoreStaged restores into a staging sibling of tgt and renames it
// into place; on failure it removes the staging directory.
func (x *restorer) restoreStaged(ctx context.Context, tgt *restoreTarget) error {
	parent, base := filepath.Dir(tgt.path), filepath.Base(tgt.path)
	if parent == tgt.path {
		return errNoStaging
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	if tgt.exists && isMountPoint(pfd, base) {
		return fmt.Errorf("%w: %s is a mount point", errNoStaging, tgt)
	}
	name, fd, err := x.makeStaging(pfd, base, tgt)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	x.root = fd
	x.dirs[0].fresh = true
	err = x.run(ctx)
	if err == nil {
		err = x.commitStaging(pfd, fd, name, base, tgt)
	}
	if err != nil {
		x.closeFiles()
		if _, rerr := x.removeAt(context.WithoutCancel(ctx), pfd, name); rerr != nil {
			x.r.opts.Logf("restore: staging directory %s not removed: %v", filepath.Join(parent, name), rerr)
		}
	}
	return err
}

// stagingPrefix is how every staging sibling of a target named base
// begins; base is cut so that the whole name fits NAME_MAX.
func stagingPrefix(base string) string {
	const room = 255 - len("..sandsnap-") - len("4294967295-") - 16
	if len(base) > room {
		base = base[:room]
	}
	return "." + base + ".sandsnap-"
}

// makeStaging creates and opens a staging directory in the directory
// pfd for the target base, locked, with an empty target's ownership,
// xattrs and mode (plus owner rwx until the end).
func (x *restorer) makeStaging(pfd int, base string, tgt *restoreTarget) (string, int, error) {
	var name string
	for {
		name = fmt.Sprintf("%s%d-%016x", stagingPrefix(base), os.Getpid(), rand.Uint64())
		err := unix.Mkdirat(pfd, name, 0o755)
		if err == nil {
			break
		}
		switch err {
		case unix.EEXIST:
			continue
		case unix.EACCES, unix.EPERM, unix.EROFS:
			return "", -1, fmt.Errorf("%w: %s: %w", errNoStaging, filepath.Dir(tgt.path), err)
		}
		return "", -1, fmt.Errorf("create staging directory %s: %w", name, err)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		// Held until the process ends: removeStaleStaging leaves it be.
		err = unix.Flock(fd, unix.LOCK_EX)
		if err == nil && tgt.exists {
			err = x.adoptTarget(fd, tgt)
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
		return "", -1, err
	}
	return name, fd, nil
}

// adoptTarget gives the staging directory fd the empty target's xattrs,
// owner and mode (with owner rwx while the restore runs), so that what is
// created in it inherits what it would in the target.
func (x *restorer) adoptTarget(fd int, tgt *restoreTarget) error {
	tfd, err := unix.Open(tgt.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", tgt, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstat(tfd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", tgt, err)
	}
	if !x.asRoot && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s belongs to uid %d", errNoStaging, tgt, st.Uid)
	}
	if err := copyXattrs(tfd, fd); err != nil {
		return fmt.Errorf("%w: %s: %w", errNoStaging, tgt, err)
	}
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("%w: %s: chown: %w", errNoStaging, tgt, err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777|0o700); err != nil {
		return fmt.Errorf("chmod staging directory: %w", err)
	}
	return nil
}

// copyXattrs copies every extended attribute of src to dst.
func copyXattrs(src, dst int) error {
	names, err := listXattrs(src)
	if xattrUnsupported(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, n := range names {
		v, err := getXattr(src, n)
		if err != nil {
			return fmt.Errorf("read xattr %s: %w", n, err)
		}
		if err := unix.Fsetxattr(dst, n, v, 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", n, err)
		}
	}
	return nil
}

// getXattr reads one extended attribute of fd.
func getXattr(fd int, name string) ([]byte, error) {
	for {
		size, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE {
			continue // it grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// commitStaging renames the finished staging directory fd (name in the
// directory pfd) to base, and gives it an empty target's mode and times.
func (x *restorer) commitStaging(pfd, fd int, name, base string, tgt *restoreTarget) error {
	if !tgt.exists {
		err := unix.Renameat2(pfd, name, pfd, base, unix.RENAME_NOREPLACE)
		if err == unix.EINVAL || err == unix.ENOSYS {
			// No RENAME_NOREPLACE here: a plain rename can replace only
			// an empty directory, which is what may be replaced.
			err = unix.Renameat(pfd, name, pfd, base)
		}
		if err == unix.EEXIST || err == unix.ENOTEMPTY {
			return fmt.Errorf("%s was created by someone else while restoring; it was left as it is", tgt)
		}
		if err != nil {
			return fmt.Errorf("rename the staged restore to %s: %w", tgt, err)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", tgt, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is no longer a directory; it was left as it is", tgt)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", tgt, err)
	}
	switch err := unix.Renameat(pfd, name, pfd, base); err {
	case nil:
	case unix.EBUSY, unix.EXDEV:
		return fmt.Errorf("%w: %s: %w", errStagedRename, tgt, err)
	case unix.ENOTEMPTY, unix.EEXIST:
		return fmt.Errorf("%s is no longer empty; it was left as it is", tgt)
	default:
		return fmt.Errorf("rename the staged restore to %s: %w", tgt, err)
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(pfd, base, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set the times of %s: %w", tgt, err)
	}
	return nil
}

// isMountPoint reports whether base in the directory pfd is the root of a
// mount: a rename cannot replace it.
func isMountPoint(pfd int, base string) bool {
	var sx unix.Statx_t
	err := unix.Statx(pfd, base, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &sx)
	if err == nil && sx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return sx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	// Before Linux 5.8: another filesystem has another device number (a
	// bind mount of the same one is then found by the rename).
	var st, pst unix.Stat_t
	if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || unix.Fstat(pfd, &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// removeStaleStaging removes the staging siblings of base in the
// directory pfd whose restore is gone: its process is not alive and its
// lock is free (a process in another PID namespace holds its lock).
func (x *restorer) removeStaleStaging(ctx context.Context, pfd int, base string) {
	dup, err := unix.Dup(pfd)
	if err != nil {
		return
	}
	names, err := readNames(dup) // advances dup's offset only
	unix.Close(dup)
	if err != nil {
		return
	}
	prefix := stagingPrefix(base)
	for _, name := range names {
		pid, ok := stagingPID(name, prefix)
		if !ok || pid == os.Getpid() || pidAlive(pid) || stagingLocked(pfd, name) {
			continue
		}
		n, err := x.removeAt(ctx, pfd, name)
		if err != nil {
			x.r.opts.Logf("restore: stale staging directory %s: %v", name, err)
			continue
		}
		x.r.opts.Logf("restore: removed stale staging directory %s (%d entries) of process %d", name, n, pid)
	}
}

// stagingPID parses the process ID out of a staging directory's name.
func stagingPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, random, ok := strings.Cut(rest, "-")
	if _, err := hex.DecodeString(random); !ok || err != nil || len(random) != 16 {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// stagingLocked reports whether a running restore holds the lock of the
// staging directory name in pfd.
func stagingLocked(pfd int, name string) bool {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return true // not ours to judge
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == unix.EWOULDBLOCK
}

// restoreInPlace restores into tgt itself, under the incomplete marker.
// A failed run removes its temporary files and the unfinished files it
// created, so that a retry needs no more room than the snapshot.
func (x *restorer) restoreInPlace(ctx context.Context, tgt *restoreTarget, id chunk.ID) error {
	fd, err := openTarget(tgt.path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return fmt.Errorf("%w: another restore is running into %s", ErrTargetRefused, tgt)
		}
		return fmt.Errorf("lock %s: %w", tgt, err)
	}
	x.root = fd
	// An earlier run's marker (read again now that the lock is held) means
	// the directory is inconsistent: changed files are rewritten in place.
	m, _ := readMarker(tgt.path)
	x.rewrite = m != nil
	err = writeMarker(fd, restoreMarker{Snapshot: id, Started: x.r.opts.Now().UTC(), Host: x.r.opts.Host, PID: os.Getpid()})
	if err != nil {
		return err
	}
	if err := x.run(ctx); err != nil {
		x.cleanup()
		return err
	}
	return removeMarker(fd)
}
