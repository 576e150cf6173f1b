package repo

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/manifest"
)

// The metadata pass sets each entry's owner, extended attributes, mode and
// mtime, deepest directories first, after every file's content is written.
// The order on one entry matters:
//
//  1. owner (as root, unless Untrusted): chown clears setuid, setgid and
//     security.capability, so it goes first;
//  2. xattrs: the restorable ones (storedXattr) that the entry holds and
//     the snapshot lacks are removed, then the snapshot's are set. A file
//     capability is set here, after chown and after every write (a write
//     clears it too);
//  3. mode: chmod rewrites an access ACL's mask from the group bits, which
//     at backup were the mask, so the ACL comes out as it was saved;
//  4. mtime, last.
//
// Nothing the pass leaves may permit more than the snapshot does. Where an
// access ACL is not set (an untrusted restore, a filesystem without ACLs,
// a value the kernel refuses), the group bits, which hold the ACL's mask,
// would grant the owning group what only the mask allowed: they are
// narrowed to what the owning group had (group_obj & mask), and the entry
// is reported in Skipped. Every other left-out item (setuid and setgid
// bits and non-user xattrs under Untrusted, a capability a non-root
// restore cannot set, an xattr namespace sandsnap never restores) is
// reported too, once per path and reason.

// metaState is the metadata pass's shared state; its zero value is ready.
type metaState struct {
	mu sync.Mutex // guards the fields below
	// skipped is what the restore left out; a set, so that each (path,
	// reason) is reported once.
	skipped map[Skipped]struct{}
	// aclDirs holds the directories that had a default ACL when the
	// structure pass created entries in them: those entries inherited an
	// access ACL (and directories a default ACL) that the snapshot may
	// lack, so they are not clean even when fresh.
	aclDirs map[*rdir]struct{}
}

// skip records that the restore left something out at path.
func (x *restorer) skip(path, reason string) {
	m := &x.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.skipped == nil {
		m.skipped = make(map[Skipped]struct{})
	}
	m.skipped[Skipped{Path: path, Reason: reason}] = struct{}{}
}

// skippedList returns what the restore left out, sorted by path and reason.
func (x *restorer) skippedList() []Skipped {
	m := &x.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.skipped) == 0 {
		return nil
	}
	out := make([]Skipped, 0, len(m.skipped))
	for s := range m.skipped {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Skipped) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

// noteDefaultACL records whether the directory d, open as fd, has a
// default ACL, before the structure pass creates anything in it.
func (x *restorer) noteDefaultACL(fd int, d *rdir) {
	if n, err := unix.Fgetxattr(fd, xattrACLDefault, nil); err != nil || n <= 0 {
		return // none, or no ACL support: nothing is inherited
	}
	m := &x.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aclDirs == nil {
		m.aclDirs = make(map[*rdir]struct{})
	}
	m.aclDirs[d] = struct{}{}
}

func (x *restorer) inheritsACL(d *rdir) bool {
	m := &x.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.aclDirs[d]
	return ok
}

// ownedAsRestored reports whether an existing entry may stay in place as
// far as its owner goes: in an untrusted restore every entry must belong
// to the restoring user, and the restore never chowns, so an entry of
// anyone else's is replaced by one it creates.
func (x *restorer) ownedAsRestored(st *unix.Stat_t) bool {
	return !x.opts.Untrusted || int(st.Uid) == os.Geteuid()
}

// metaEntry is one entry whose metadata the pass sets.
type metaEntry struct {
	dirfd int
	rel   string // path below the target, for messages and Skipped
	n     *manifest.Node
	// clean: created by this restore in a directory with no default ACL,
	// so it holds no xattr to remove.
	clean bool
}

// finishDir renames d's replaced files into place and sets the metadata of
// each of its entries (a subdirectory's own metadata is set here, after
// its contents are final).
func (x *restorer) finishDir(d *rdir) error {
	fd, err := x.openBeneath(d.rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("directory %q: %w", displayRel(d.rel), err)
	}
	defer unix.Close(fd)
	inherits := x.inheritsACL(d)
	for i := range d.tree.Nodes {
		n := &d.tree.Nodes[i]
		if f := d.ents[i].file; f != nil {
			if f.leader != nil {
				x.remember(fd, d.rel, n)
				continue // the same inode as its leader, set there
			}
			if f.tmp != "" {
				if err := unix.Renameat(fd, f.tmp, fd, n.Name); err != nil {
					return fmt.Errorf("rename %q to %q: %w", joinRel(d.rel, f.tmp), f.display(), err)
				}
				f.tmp = ""
			}
		}
		e := metaEntry{dirfd: fd, rel: joinRel(d.rel, n.Name), n: n, clean: d.ents[i].fresh && !inherits}
		if err := x.setMeta(e); err != nil {
			return fmt.Errorf("%q: %w", e.rel, err)
		}
		x.remember(fd, d.rel, n)
	}
	return nil
}

// remember records a regular file's final stat in the new files cache,
// after its mtime is set, so that the next backup of this directory
// trusts it without reading.
func (x *restorer) remember(dirfd int, rel string, n *manifest.Node) {
	if x.fcNew == nil || n.Type != manifest.TypeFile {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(dirfd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	x.fcNew.set(joinRel(rel, n.Name), fileStatOf(&st, n))
}

// setMeta sets the owner, xattrs, mode and mtime of one entry, in that
// order (see the top of this file for why).
func (x *restorer) setMeta(e metaEntry) error {
	n := e.n
	if err := x.setOwner(e); err != nil {
		return err
	}
	mode := x.modeOf(e)
	if n.Type != manifest.TypeSymlink {
		aclSet, err := x.syncXattrs(e)
		if err != nil {
			return err
		}
		if acl, ok := findXattr(n.Xattrs, xattrACLAccess); ok && !aclSet {
			mode = narrowGroup(mode, acl)
		}
		if err := chmodAt(e.dirfd, n.Name, mode); err != nil {
			return err
		}
	} else if len(n.Xattrs) > 0 {
		x.skip(e.rel, "xattrs of a symlink not restored")
	}
	ts := unix.NsecToTimespec(n.MtimeNs)
	if err := unix.UtimesNanoAt(e.dirfd, n.Name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime: %w", err)
	}
	return nil
}

// setOwner gives the entry the snapshot's owner when the restore runs as
// root and trusts the snapshot. An untrusted restore leaves every entry to
// the restoring user and reports that once, for the whole target.
func (x *restorer) setOwner(e metaEntry) error {
	n := e.n
	if x.opts.Untrusted {
		if int(n.UID) != os.Geteuid() || int(n.GID) != os.Getegid() {
			x.skip(".", fmt.Sprintf("owners not restored (untrusted): entries belong to uid %d", os.Geteuid()))
		}
		return nil
	}
	if !x.asRoot {
		return nil
	}
	if err := unix.Fchownat(e.dirfd, n.Name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// modeOf is the mode the entry gets before any ACL narrowing: the
// snapshot's, without setuid and setgid in an untrusted restore.
func (x *restorer) modeOf(e metaEntry) uint32 {
	mode := e.n.Mode
	if x.opts.Untrusted && mode&(unix.S_ISUID|unix.S_ISGID) != 0 && e.n.Type != manifest.TypeSymlink {
		mode &^= unix.S_ISUID | unix.S_ISGID
		x.skip(e.rel, "setuid/setgid bits not restored (untrusted)")
	}
	return mode
}

func chmodAt(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		// No fchmodat2: the entry is not a symlink (the structure pass
		// made it), so following is harmless.
		err = unix.Fchmodat(dirfd, name, mode, 0)
	}
	if err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// xattrRefusal says why the restore does not set the xattr name on an
// entry of type t, or "" if it does.
func (x *restorer) xattrRefusal(t manifest.NodeType, name string) string {
	user := strings.HasPrefix(name, "user.")
	switch {
	case !storedXattr(name):
		return "a namespace sandsnap does not restore"
	case x.opts.Untrusted && !user:
		return "untrusted"
	case t == manifest.TypeFIFO && user:
		return "user.* xattrs exist only on files and directories"
	case t == manifest.TypeFIFO && name == xattrCapability:
		return "capabilities exist only on files"
	}
	return ""
}

// syncXattrs makes the restorable xattrs of a file, directory or FIFO
// those of the snapshot, and reports whether it set the access ACL.
func (x *restorer) syncXattrs(e metaEntry) (aclSet bool, err error) {
	n := e.n
	want := make([]manifest.Xattr, 0, len(n.Xattrs))
	for _, a := range n.Xattrs {
		if why := x.xattrRefusal(n.Type, a.Name); why != "" {
			x.skipXattr(e.rel, a, why)
			continue
		}
		want = append(want, a)
	}
	if len(want) == 0 && e.clean {
		return false, nil
	}
	fd, err := openForXattrs(e.dirfd, n)
	if err != nil {
		if len(want) == 0 && err == unix.EACCES {
			return false, nil // unreadable to a non-root user; nothing to add
		}
		return false, fmt.Errorf("open for xattrs: %w", err)
	}
	defer unix.Close(fd)
	if !e.clean {
		if err := removeStaleXattrs(fd, want); err != nil {
			if xattrUnsupported(err) {
				return false, x.unsupportedXattrs(e.rel, want)
			}
			return false, err
		}
	}
	for _, a := range want {
		set, err := x.setXattr(fd, e.rel, a)
		if err != nil {
			return false, err
		}
		if !set {
			// Not the snapshot's value, so not an old one either (best
			// effort: where this fails, so did the set, for the same
			// reason, and the narrowed mode still bounds an old ACL).
			unix.Fremovexattr(fd, a.Name)
		}
		aclSet = aclSet || (set && a.Name == xattrACLAccess)
	}
	return aclSet, nil
}

func openForXattrs(dirfd int, n *manifest.Node) (int, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if n.Type == manifest.TypeDir {
		flags |= unix.O_DIRECTORY
	}
	return unix.Openat(dirfd, n.Name, flags, 0)
}

// removeStaleXattrs removes the restorable xattrs fd holds that are not in
// want. Other namespaces (security.selinux, trusted.*) are the host's.
func removeStaleXattrs(fd int, want []manifest.Xattr) error {
	have, err := listXattrs(fd)
	if err != nil {
		if xattrUnsupported(err) {
			return err
		}
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range have {
		if _, ok := findXattr(want, name); ok || !storedXattr(name) {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && err != unix.ENODATA {
			return fmt.Errorf("remove xattr %s: %w", name, err)
		}
	}
	return nil
}

// setXattr sets one xattr and reports whether it did. What the kernel
// refuses for a reason that concerns this entry or filesystem (no support,
// no privilege, a value it rejects) is reported in Skipped, not fatal.
func (x *restorer) setXattr(fd int, rel string, a manifest.Xattr) (bool, error) {
	err := unix.Fsetxattr(fd, a.Name, a.Value, 0)
	switch {
	case err == nil:
		return true, nil
	case xattrUnsupported(err):
		x.skipXattr(rel, a, "not supported here")
	case err == unix.EPERM || err == unix.EINVAL:
		x.skipXattr(rel, a, err.Error())
	default:
		return false, fmt.Errorf("set xattr %s: %w", a.Name, err)
	}
	return false, nil
}

// unsupportedXattrs reports every xattr of want as left out on a
// filesystem without xattrs.
func (x *restorer) unsupportedXattrs(rel string, want []manifest.Xattr) error {
	for _, a := range want {
		x.skipXattr(rel, a, "not supported here")
	}
	return nil
}

// skipXattr reports one xattr left out, and for an access ACL the group
// bits it narrows.
func (x *restorer) skipXattr(rel string, a manifest.Xattr, why string) {
	reason := fmt.Sprintf("xattr %s not restored: %s", a.Name, why)
	if a.Name == xattrACLAccess {
		g := aclGroupPerm(a.Value)
		reason += "; group permissions limited to the owning group's " + permString(g)
	}
	x.skip(rel, reason)
}

func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func findXattr(xs []manifest.Xattr, name string) ([]byte, bool) {
	for _, a := range xs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// listXattrs returns the names of fd's extended attributes.
func listXattrs(fd int) ([]string, error) {
	size, err := unix.Flistxattr(fd, nil)
	for {
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		var n int
		n, err = unix.Flistxattr(fd, buf)
		if err == unix.ERANGE { // grew meanwhile
			size, err = unix.Flistxattr(fd, nil)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}
