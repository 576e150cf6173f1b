package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// Every filesystem call below is relative to a directory descriptor and
// never follows a symlink below the target: a planted link cannot redirect
// a write outside it.

// openBeneath opens rel (a path below the target, "" for the target) with
// flags, following no symlink on the way: with openat2's
// RESOLVE_NO_SYMLINKS when the kernel has it, otherwise one O_NOFOLLOW
// openat per element.
func (x *restorer) openBeneath(rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if !x.noOpenat2.Load() && len(rel) < unix.PathMax-1 {
		how := unix.OpenHow{
			Flags:   uint64(flags),
			Mode:    uint64(mode),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		for range 8 {
			fd, err := unix.Openat2(x.root, rel, &how)
			switch err {
			case nil:
				return fd, nil
			case unix.EAGAIN, unix.EINTR: // a concurrent rename; try again
				continue
			case unix.ENOSYS, unix.EPERM: // no openat2, or a seccomp filter refusing it
				x.noOpenat2.Store(true)
			default:
				return -1, fmt.Errorf("open %q: %w", rel, err)
			}
			break
		}
	}
	return x.walkOpen(rel, flags, mode)
}

// walkOpen is openBeneath one path element at a time.
func (x *restorer) walkOpen(rel string, flags int, mode uint32) (int, error) {
	elems := strings.Split(rel, "/")
	dir := x.root
	for i, e := range elems {
		fl := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(elems)-1 {
			fl = flags
		}
		fd, err := unix.Openat(dir, e, fl, mode)
		if dir != x.root {
			unix.Close(dir)
		}
		if err != nil {
			return -1, fmt.Errorf("open %q: %w", rel, err)
		}
		dir = fd
	}
	return dir, nil
}

// readNames lists the directory open as fd (reading advances its offset,
// which no *at call depends on).
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// removeAt removes name from the directory dirfd, a directory with all
// its contents, without following symlinks, and returns how many entries
// it removed.
func (x *restorer) removeAt(ctx context.Context, dirfd int, name string) (uint64, error) {
	err := unix.Unlinkat(dirfd, name, 0)
	switch err {
	case nil:
		return 1, nil
	case unix.ENOENT:
		return 0, nil
	case unix.EISDIR, unix.EPERM:
	default:
		return 0, fmt.Errorf("remove: %w", err)
	}
	sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("remove: %w", err)
	}
	defer unix.Close(sub)
	if !x.asRoot {
		unix.Fchmod(sub, 0o700) // a read-only directory refuses removals
	}
	names, err := readNames(sub)
	if err != nil {
		return 0, fmt.Errorf("remove: list: %w", err)
	}
	var count uint64
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return count, err
		}
		c, err := x.removeAt(ctx, sub, n)
		count += c
		if err != nil {
			return count, fmt.Errorf("%q: %w", n, err)
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return count, fmt.Errorf("remove: %w", err)
	}
	return count + 1, nil
}

// prepareDir makes the directory open as fd (and closed here) hold the
// right type at every name of d: it removes what the snapshot lacks,
// replaces entries of the wrong type, keeps unchanged files and creates
// the rest; files to write get their final size, as holes. Subdirectories
// continue on the pool.
func (x *restorer) prepareDir(ctx context.Context, g *errgroup.Group, fd int, d *rdir) error {
	defer unix.Close(fd)
	if !d.fresh {
		names, err := readNames(fd)
		if err != nil {
			return atPath(displayRel(d.rel), fmt.Errorf("list: %w", err))
		}
		for _, name := range names {
			if _, ok := d.tree.Find(name); ok || (d.rel == "" && name == markerName) {
				continue // the marker stays until the restore has finished
			}
			n, err := x.removeAt(ctx, fd, name)
			x.removed.Add(n)
			if err != nil {
				return atPath(joinRel(d.rel, name), err)
			}
		}
	}
	for i := range d.tree.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &d.tree.Nodes[i]
		var st unix.Stat_t
		exists := false
		if !d.fresh {
			switch err := unix.Fstatat(fd, n.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err {
			case nil:
				exists = true
			case unix.ENOENT:
			default:
				return atPath(joinRel(d.rel, n.Name), fmt.Errorf("lstat: %w", err))
			}
		}
		var err error
		switch n.Type {
		case manifest.TypeDir:
			err = x.prepareSubdir(ctx, g, fd, d, i, exists, &st)
		case manifest.TypeFile:
			err = x.prepareFile(ctx, fd, d, i, exists, &st)
		case manifest.TypeSymlink:
			err = x.prepareSymlink(ctx, fd, d, i, exists, &st)
		case manifest.TypeFIFO:
			err = x.prepareFIFO(ctx, fd, d, i, exists, &st)
		}
		if err != nil {
			return atPath(joinRel(d.rel, n.Name), err)
		}
	}
	return nil
}

// pathError is an error already attributed to a path below the target, so
// that the directories above it do not add theirs.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return fmt.Sprintf("%q: %v", elidePath(e.path), e.err) }
func (e *pathError) Unwrap() error { return e.err }

func atPath(path string, err error) error {
	var pe *pathError
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) {
		return err
	}
	return &pathError{path: path, err: err}
}

// replace removes an entry of the wrong type so that it can be created.
func (x *restorer) replace(ctx context.Context, fd int, name string) error {
	n, err := x.removeAt(ctx, fd, name)
	x.removed.Add(n)
	return err
}

func (x *restorer) prepareSubdir(ctx context.Context, g *errgroup.Group, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	sub := d.ents[i].sub
	if exists && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if !x.asRoot && st.Mode&0o700 != 0o700 {
			// Its final mode is set after its contents are written.
			if err := unix.Fchmodat(fd, n.Name, (st.Mode&0o7777)|0o700, 0); err != nil {
				return fmt.Errorf("chmod: %w", err)
			}
		}
	} else {
		if exists {
			if err := x.replace(ctx, fd, n.Name); err != nil {
				return err
			}
		}
		if err := unix.Mkdirat(fd, n.Name, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		sub.fresh = true
		d.ents[i].fresh = true
	}
	subfd, err := unix.Openat(fd, n.Name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if g.TryGo(func() error { return x.prepareDir(ctx, g, subfd, sub) }) {
		return nil
	}
	return x.prepareDir(ctx, g, subfd, sub)
}

func (x *restorer) prepareFile(ctx context.Context, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	f := d.ents[i].file
	if f.leader != nil {
		return nil // linked to its leader by the link pass
	}
	f.write = true
	if exists && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if x.unchanged(fd, joinRel(d.rel, n.Name), n, st) {
			f.write = false
			x.filesUnchanged.Add(1)
			x.progressFile(int64(n.Size))
			return nil
		}
		if x.rewrite {
			// After an unfinished run (restorer.rewrite): no second copy.
			if err := unix.Unlinkat(fd, n.Name, 0); err != nil {
				return fmt.Errorf("remove: %w", err)
			}
			return x.createPlaceholder(fd, d, i)
		}
		// Written beside the old version and renamed over it at the end,
		// so that the old file stays whole until the new one is.
		for {
			f.tmp = tempName()
			err := x.createFile(fd, f.tmp, n.Size)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EEXIST) {
				f.tmp = ""
				return err
			}
		}
		d.ents[i].fresh = true
		x.countCreated(f)
		return nil
	}
	if exists {
		if err := x.replace(ctx, fd, n.Name); err != nil {
			return err
		}
	}
	return x.createPlaceholder(fd, d, i)
}

// createPlaceholder creates the file of entry i of d, to be written by
// the data phase.
func (x *restorer) createPlaceholder(fd int, d *rdir, i int) error {
	n := &d.tree.Nodes[i]
	if err := x.createFile(fd, n.Name, n.Size); err != nil {
		return err
	}
	d.ents[i].fresh = true
	x.countCreated(d.ents[i].file)
	return nil
}

// countCreated accounts for a file that has no chunks to write.
func (x *restorer) countCreated(f *rfile) {
	f.left = len(f.node.Content)
	if f.left == 0 {
		x.filesWritten.Add(1)
		x.progressFile(0)
	}
}

// tempName returns a name for a file written beside the one it replaces.
// It is short, so it fits wherever the final name does.
func tempName() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return ".sandsnap-" + hex.EncodeToString(b[:]) + ".tmp"
}

// createFile creates name, which must not exist, with size bytes of holes.
func (x *restorer) createFile(dirfd int, name string, size uint64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %q: %w", name, err)
	}
	if size > 0 {
		err = unix.Ftruncate(fd, int64(size))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create %q: %w", name, err)
	}
	return nil
}

// unchanged reports whether the regular file name already holds node's
// content: same size and mtime, then the same chunk IDs (reading is
// cheaper than writing). A file with more hard links than the snapshot
// gives its inode is rewritten, which breaks the extra links, so that
// setting its metadata cannot reach a name the snapshot does not link
// (possibly outside the target).
func (x *restorer) unchanged(dirfd int, rel string, n *manifest.Node, st *unix.Stat_t) bool {
	names := uint64(1)
	if n.LinkID != 0 {
		names = x.linkNames[n.LinkID]
	}
	if uint64(st.Size) != n.Size || st.Mtim.Nano() != n.MtimeNs || uint64(st.Nlink) > names {
		return false
	}
	if x.fcOld.match(rel, st, n.Content) {
		return true // this host wrote or read exactly this content there
	}
	x.filesChecked.Add(1)
	fd, err := unix.Openat(dirfd, n.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), n.Name)
	defer f.Close()
	ch := x.chunkers.Get().(*chunk.Chunker)
	defer x.chunkers.Put(ch)
	ch.Reset(f)
	for i := 0; ; i++ {
		c, err := ch.Next()
		if err == io.EOF {
			return i == len(n.Content)
		}
		if err != nil || i >= len(n.Content) || chunk.Hash(c.Data) != n.Content[i] {
			return false
		}
	}
}

func (x *restorer) prepareSymlink(ctx context.Context, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	if exists {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, len(n.Target)+1)
			if k, err := unix.Readlinkat(fd, n.Name, buf); err == nil && k == len(n.Target) && string(buf[:k]) == n.Target {
				return nil
			}
		}
		if err := x.replace(ctx, fd, n.Name); err != nil {
			return err
		}
	}
	if err := unix.Symlinkat(n.Target, fd, n.Name); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	d.ents[i].fresh = true
	return nil
}

func (x *restorer) prepareFIFO(ctx context.Context, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	if exists {
		if st.Mode&unix.S_IFMT == unix.S_IFIFO {
			return nil
		}
		if err := x.replace(ctx, fd, n.Name); err != nil {
			return err
		}
	}
	if err := unix.Mknodat(fd, n.Name, unix.S_IFIFO|0o600, 0); err != nil {
		return fmt.Errorf("mkfifo: %w", err)
	}
	d.ents[i].fresh = true
	return nil
}

// dirCache keeps directory descriptors open across the link pass.
type dirCache struct {
	x   *restorer
	fds map[*rdir]int
}

func (c *dirCache) open(d *rdir) (int, error) {
	if fd, ok := c.fds[d]; ok {
		return fd, nil
	}
	if len(c.fds) >= 256 {
		c.close()
	}
	fd, err := c.x.openBeneath(d.rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	c.fds[d] = fd
	return fd, nil
}

func (c *dirCache) close() {
	for d, fd := range c.fds {
		unix.Close(fd)
		delete(c.fds, d)
	}
}

// links gives every further name of a hard-linked inode its link to the
// first name, unless it is that inode already.
func (x *restorer) links(ctx context.Context) error {
	c := &dirCache{x: x, fds: make(map[*rdir]int)}
	defer c.close()
	for _, f := range x.files {
		if f.leader == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.link(ctx, c, f); err != nil {
			return fmt.Errorf("hard link %q to %q: %w", f.display(), f.leader.display(), err)
		}
	}
	return nil
}

func (x *restorer) link(ctx context.Context, c *dirCache, f *rfile) error {
	l := f.leader
	ldir, err := c.open(l.dir)
	if err != nil {
		return err
	}
	fdir, err := c.open(f.dir)
	if err != nil {
		return err
	}
	var lst, fst unix.Stat_t
	if err := unix.Fstatat(ldir, l.name(), &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch err := unix.Fstatat(fdir, f.node.Name, &fst, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		if fst.Dev == lst.Dev && fst.Ino == lst.Ino {
			x.filesUnchanged.Add(1)
			x.progressFile(int64(f.node.Size))
			return nil
		}
		if err := x.replace(ctx, fdir, f.node.Name); err != nil {
			return err
		}
	case unix.ENOENT:
	default:
		return err
	}
	if err := unix.Linkat(ldir, l.name(), fdir, f.node.Name, 0); err != nil {
		return err
	}
	x.progressFile(int64(f.node.Size))
	return nil
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
		if err := x.setMeta(fd, n, d.ents[i].fresh); err != nil {
			return fmt.Errorf("%q: %w", joinRel(d.rel, n.Name), err)
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

// setMeta sets the owner (as root), user.* xattrs, mode and mtime of the
// entry n in dirfd, in that order: chown clears setuid and setgid, and
// setting xattrs needs write access that the final mode may take away.
func (x *restorer) setMeta(dirfd int, n *manifest.Node, fresh bool) error {
	if x.asRoot {
		if err := unix.Fchownat(dirfd, n.Name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if n.Type == manifest.TypeFile || n.Type == manifest.TypeDir {
		if len(n.Xattrs) > 0 || !fresh {
			if err := x.syncXattrs(dirfd, n); err != nil {
				return err
			}
		}
	}
	if n.Type != manifest.TypeSymlink {
		err := unix.Fchmodat(dirfd, n.Name, n.Mode, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			// No fchmodat2: n is not a symlink (the structure pass made
			// it), so following is harmless.
			err = unix.Fchmodat(dirfd, n.Name, n.Mode, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := unix.NsecToTimespec(n.MtimeNs)
	if err := unix.UtimesNanoAt(dirfd, n.Name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime: %w", err)
	}
	return nil
}

// syncXattrs makes the user.* xattrs of a file or directory those of n.
func (x *restorer) syncXattrs(dirfd int, n *manifest.Node) error {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if n.Type == manifest.TypeDir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Openat(dirfd, n.Name, flags, 0)
	if err != nil {
		if len(n.Xattrs) == 0 && err == unix.EACCES {
			return nil // unreadable to a non-root user; nothing to add
		}
		return fmt.Errorf("open for xattrs: %w", err)
	}
	defer unix.Close(fd)
	have, err := listXattrs(fd)
	if err != nil {
		if xattrUnsupported(err) {
			if len(n.Xattrs) > 0 {
				x.r.opts.Logf("restore: %s: extended attributes not supported here, %d left out", n.Name, len(n.Xattrs))
			}
			return nil
		}
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range have {
		if !strings.HasPrefix(name, "user.") || hasXattr(n.Xattrs, name) {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && err != unix.ENODATA {
			return fmt.Errorf("remove xattr %s: %w", name, err)
		}
	}
	for _, a := range n.Xattrs {
		if err := unix.Fsetxattr(fd, a.Name, a.Value, 0); err != nil {
			if xattrUnsupported(err) {
				x.r.opts.Logf("restore: %s: xattr %s not supported here, left out", n.Name, a.Name)
				continue
			}
			return fmt.Errorf("set xattr %s: %w", a.Name, err)
		}
	}
	return nil
}

func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func hasXattr(xs []manifest.Xattr, name string) bool {
	for _, a := range xs {
		if a.Name == name {
			return true
		}
	}
	return false
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

// writeSparse writes data at off in fd, skipping every piece of a 4 KiB
// block (aligned to the file) that is all zero: the file was truncated to
// its size, so those bytes read as zero already and stay holes.
func writeSparse(fd int, data []byte, off int64) error {
	const block = 4 << 10
	run := -1 // start of the pending non-zero run in data
	flush := func(end int) error {
		if run < 0 {
			return nil
		}
		err := pwriteAll(fd, data[run:end], off+int64(run))
		run = -1
		return err
	}
	for i := 0; i < len(data); {
		end := min(len(data), i+block-int((off+int64(i))%block))
		if isZero(data[i:end]) {
			if err := flush(i); err != nil {
				return err
			}
		} else if run < 0 {
			run = i
		}
		i = end
	}
	return flush(len(data))
}

// zeroBlock is never written.
var zeroBlock [4 << 10]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}
