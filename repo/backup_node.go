package repo

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/pkg/xattr"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/manifest"
)

// readDir opens a directory and lists its entry names in byte order (the
// order trees are sorted in). The caller closes the descriptor, which
// serves the lstat of each entry. It reads with getdents directly: os.Open
// and Readdirnames cost a third of a no-change backup's listing time.
func readDir(dir string) (int, []string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return fd, names, nil
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

func (b *backup) progress(n int64) {
	if b.opts.Progress != nil {
		b.opts.Progress.Files.Add(1)
		b.opts.Progress.Bytes.Add(n)
	}
}

// nodeOf builds the metadata of one entry. ok is false for entries that
// are not stored (sockets, devices), which are reported in Skipped.
//
// A file that the files cache vouches for keeps the parent's xattrs
// without a llistxattr call: setting an xattr changes the ctime, which
// the cache entry pins. That call is a third of a no-change backup's time.
func (b *backup) nodeOf(abs, rel, name string, st *unix.Stat_t, pn *manifest.Node, cc cacheCheck) (manifest.Node, bool, error) {
	n := manifest.Node{
		Name:    name,
		Mode:    st.Mode & 07777,
		UID:     st.Uid,
		GID:     st.Gid,
		MtimeNs: st.Mtim.Nano(),
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
		b.dirs.Add(1)
	case unix.S_IFLNK:
		n.Type = manifest.TypeSymlink
		target, err := os.Readlink(abs)
		if err != nil {
			return n, false, fmt.Errorf("repo: readlink %s: %w", abs, err)
		}
		n.Target = target
		b.symlinks.Add(1)
	case unix.S_IFIFO:
		n.Type = manifest.TypeFIFO
		b.other.Add(1)
	default:
		b.mu.Lock()
		b.skipped = append(b.skipped, Skipped{Path: rel, Reason: kindName(st.Mode) + " not supported"})
		b.mu.Unlock()
		return n, false, nil
	}
	if err := manifest.ValidName(name); err != nil {
		return n, false, fmt.Errorf("repo: %s: %w", abs, err)
	}
	if n.Type == manifest.TypeFile && cc.vouches {
		n.Xattrs = pn.Xattrs
		return n, true, nil
	}
	xs, err := readXattrs(abs)
	if err != nil {
		return n, false, err
	}
	n.Xattrs = xs
	return n, true, nil
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

// readXattrs returns the extended attributes of an entry that a snapshot
// carries (storedXattr), sorted.
func readXattrs(abs string) ([]manifest.Xattr, error) {
	names, err := xattr.LList(abs)
	if err != nil {
		if unsupported(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("repo: list xattrs of %s: %w", abs, err)
	}
	var out []manifest.Xattr
	for _, name := range names {
		if !storedXattr(name) {
			continue
		}
		v, err := xattr.LGet(abs, name)
		if err != nil {
			if unsupported(err) || errors.Is(err, xattr.ENOATTR) {
				continue
			}
			return nil, fmt.Errorf("repo: read xattr %s of %s: %w", name, abs, err)
		}
		out = append(out, manifest.Xattr{Name: name, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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
