package repo

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/manifest"
)

// readDir opens a directory and lists its entry names in byte order (the
// order trees are sorted in). The caller closes the descriptor, which
// serves the lstat of each entry. The backup opens directories relative to
// their parent instead (dirPool); diff uses this.
func readDir(dir string) (int, []string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	names, err := listNames(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, names, nil
}

// listNames lists the directory open as fd in byte order. It reads with
// getdents directly (readNames): os.Open and Readdirnames cost a third of
// a no-change backup's listing time.
func listNames(fd int) ([]string, error) {
	names, err := readNames(fd)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// excluded reports whether an entry matches an exclude pattern.
func (b *backup) excluded(rel, name string) bool {
	for _, p := range b.opts.Excludes {
		subject := name
		if strings.Contains(p, "/") {
			subject = rel
		}
		if ok, _ := path.Match(strings.TrimPrefix(p, "/"), subject); ok {
			return true
		}
	}
	return false
}

// skip records an unreadable entry and reports whether the backup goes on
// without it.
func (b *backup) skip(rel string, err error) bool {
	if !b.opts.SkipUnreadable {
		return false
	}
	b.mu.Lock()
	b.skipped = append(b.skipped, Skipped{Path: rel, Reason: err.Error()})
	b.mu.Unlock()
	return true
}

// skipOr returns nil when err is nil or when the entry rel is skipped
// (SkipUnreadable), and err otherwise.
func (b *backup) skipOr(rel string, err error) error {
	if err == nil || b.skip(rel, err) {
		return nil
	}
	return err
}

func (b *backup) progress(n int64) {
	if b.opts.Progress != nil {
		b.opts.Progress.Files.Add(1)
		b.opts.Progress.Bytes.Add(n)
	}
}

// nodeOf builds the metadata of the entry name in the directory dirfd,
// lstat'ed as st, without its xattrs: who reads them depends on the
// entry's kind (dirWalk.entry). ok is false for entries that are not
// stored (sockets, devices), which are reported in Skipped.
func (b *backup) nodeOf(dirfd int, name, rel string, st *unix.Stat_t) (manifest.Node, bool, error) {
	n := manifest.Node{
		Name:    name,
		Mode:    st.Mode & 07777,
		UID:     st.Uid,
		GID:     st.Gid,
		MtimeNs: st.Mtim.Nano(),
	}
	if err := manifest.ValidName(name); err != nil {
		return n, false, fmt.Errorf("repo: %s: %w", b.abs(rel), err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = manifest.TypeFile
		n.Size = uint64(st.Size)
		if st.Nlink > 1 {
			n.LinkID = st.Ino
		}
	case unix.S_IFDIR:
		n.Type = manifest.TypeDir
	case unix.S_IFLNK:
		n.Type = manifest.TypeSymlink
		target, err := readlinkAt(dirfd, name, st.Size)
		if err != nil {
			return n, false, fmt.Errorf("repo: readlink %s: %w", b.abs(rel), err)
		}
		n.Target = target
	case unix.S_IFIFO:
		n.Type = manifest.TypeFIFO
	default:
		b.mu.Lock()
		b.skipped = append(b.skipped, Skipped{Path: rel, Reason: kindName(st.Mode) + " not supported"})
		b.mu.Unlock()
		return n, false, nil
	}
	return n, true, nil
}

// readlinkAt reads the target of the symlink name in dirfd; size is its
// lstat size, which some filesystems report as 0.
func readlinkAt(dirfd int, name string, size int64) (string, error) {
	buf := make([]byte, max(size+1, 256))
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf)) // grew since the lstat
	}
}

func kindName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}

// xattrSource reads one entry's extended attributes. list fills buf with
// the NUL-separated names, get one value; each returns the size needed
// when buf is nil, and ERANGE when buf is too small, as the xattr calls do.
type xattrSource struct {
	list func(buf []byte) (int, error)
	get  func(name string, buf []byte) (int, error)
}

// fdXattrs reads through an open file or directory.
func fdXattrs(fd int) xattrSource {
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		get:  func(name string, buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) },
	}
}

// pathXattrs reads by path, not following a final symlink.
func pathXattrs(p string) xattrSource {
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		get:  func(name string, buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) },
	}
}

// atXattrs reads the xattrs of name in the directory dirfd without
// opening it (a file taken over from the parent, a FIFO): opening every
// file would double the cost of a no-change backup. It lists with
// listxattrat (Linux 6.13) and otherwise, like each get, goes through
// /proc/self/fd/<dirfd>/<name>: a short path that the kernel resolves
// through the open descriptor, whatever the directory's own path length.
func (b *backup) atXattrs(dirfd int, name string) xattrSource {
	proc := func() string { return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name }
	return xattrSource{
		list: func(buf []byte) (int, error) {
			if !b.noXattrat.Load() {
				n, err := listxattrat(dirfd, name, buf)
				if err != unix.ENOSYS {
					return n, err
				}
				b.noXattrat.Store(true)
			}
			return unix.Llistxattr(proc(), buf)
		},
		get: func(attr string, buf []byte) (int, error) { return unix.Lgetxattr(proc(), attr, buf) },
	}
}

// listxattrat is listxattrat(2) with AT_SYMLINK_NOFOLLOW.
func listxattrat(dirfd int, name string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var bp unsafe.Pointer
	if len(buf) > 0 {
		bp = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(bp), uintptr(len(buf)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// readXattrs returns the extended attributes of the entry at abs that a
// snapshot carries (storedXattr), sorted. The backup reads through
// descriptors instead; diff uses this.
func readXattrs(abs string) ([]manifest.Xattr, error) {
	xs, err := storedXattrs(pathXattrs(abs))
	if err != nil {
		return nil, fmt.Errorf("repo: xattrs of %s: %w", abs, err)
	}
	return xs, nil
}

// storedXattrs returns the extended attributes from src that a snapshot
// carries (storedXattr), sorted by name; none where the filesystem has no
// xattrs.
func storedXattrs(src xattrSource) ([]manifest.Xattr, error) {
	list, err := xattrBytes(src.list)
	if err != nil {
		if unsupported(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []manifest.Xattr
	for name := range strings.SplitSeq(string(list), "\x00") {
		if !storedXattr(name) {
			continue
		}
		v, err := xattrBytes(func(buf []byte) (int, error) { return src.get(name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		out = append(out, manifest.Xattr{Name: name, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// xattrBytes runs an xattr call for its whole answer: once for the size,
// then with a buffer of that size (again if it grew in between). Most
// entries have no xattrs: one call, nothing allocated.
func xattrBytes(call func(buf []byte) (int, error)) ([]byte, error) {
	for {
		size, err := call(nil)
		if err != nil || size == 0 {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := call(buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func unsupported(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

// findNode returns the entry called name in t, or nil.
func findNode(t *manifest.Tree, name string) *manifest.Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	return nil
}

// cacheCheck is what the files cache of the parent snapshot says about
// one file: whether it has an entry, and whether that entry has this exact
// stat (inode, size, mtime, ctime). The cache was written for the parent
// snapshot (fcOld.Snapshot == Parent), so an entry that vouches describes
// the parent's node, content and xattrs, as this host left the file.
type cacheCheck struct {
	entry   fileStat
	has     bool
	vouches bool
}

// checkCache looks rel up once in the files cache.
func (b *backup) checkCache(rel string, st *unix.Stat_t, pn *manifest.Node) cacheCheck {
	if pn == nil || pn.Type != manifest.TypeFile || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return cacheCheck{}
	}
	e, ok := b.fcOld.lookup(rel)
	return cacheCheck{entry: e, has: ok, vouches: ok && e.sameStat(st)}
}

// reuse fills n's content from the parent's entry pn when the file is
// unchanged: the files cache vouches for it, or, without a cache entry,
// pn has its size and mtime to the nanosecond. Every chunk must still be
// in the repository.
func (b *backup) reuse(n, pn *manifest.Node, cc cacheCheck) bool {
	if b.opts.Reread || pn == nil || pn.Type != manifest.TypeFile || pn.Size != n.Size || pn.MtimeNs != n.MtimeNs {
		return false
	}
	if cc.has && !cc.vouches {
		return false // same size and mtime, but another inode or ctime: read it
	}
	for _, id := range pn.Content {
		if !b.r.idx.has(id) { // absent, or only in packs gc condemned
			return false
		}
	}
	n.Content = pn.Content
	b.noteReused(pn.Content...) // checked against gc before the commit
	return true
}

// rememberReused records a file taken over from the parent in the new
// files cache, reusing the old entry (and its digest) when it vouched.
func (b *backup) rememberReused(rel string, st *unix.Stat_t, n *manifest.Node, cc cacheCheck) {
	switch {
	case b.fcNew == nil:
	case cc.vouches:
		b.fcNew.set(rel, cc.entry)
	default:
		b.fcNew.set(rel, fileStatOf(st, n))
	}
}

// remember records a saved file, as the walk's lstat saw it, in the new
// files cache.
func (b *backup) remember(rel string, st *unix.Stat_t, n *manifest.Node) {
	if b.fcNew != nil {
		b.fcNew.set(rel, fileStatOf(st, n))
	}
}
