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
	case unix.EISDIR:
	case unix.EPERM:
		// Linux says EISDIR for a directory; EPERM is then about the
		// entry or its directory (immutable, append-only, sticky), unless
		// the entry is a directory after all.
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return 0, removeErr(dirfd, name, err)
		}
	default:
		return 0, fmt.Errorf("remove: %w", err)
	}
	// A mount inside DIR (a volume, a bind mount) holds another
	// filesystem's files, or files that live elsewhere too: they are
	// never removed, whatever the snapshot lacks.
	if isMountPoint(dirfd, name) {
		return 0, fmt.Errorf("remove: %w", errMountInside)
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
	var mount error // the first mount found below: the rest is removed around it
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return count, err
		}
		c, err := x.removeAt(ctx, sub, n)
		count += c
		switch {
		case errors.Is(err, errMountInside):
			if mount == nil {
				mount = below(n, err)
			}
		case err != nil:
			return count, below(n, err)
		}
	}
	if mount != nil {
		return count, mount
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return count, removeErr(dirfd, name, err)
	}
	return count + 1, nil
}

// errMountInside refuses to remove a mount point inside the target.
var errMountInside = errors.New("a mount point inside the target; sandsnap does not remove what another mount holds (unmount it, or restore elsewhere)")

// removeErr explains a refused removal. EPERM, even to root, most often
// means an inode flag on the entry or on the directory holding it
// (chattr +i or +a); statx says which.
func removeErr(dirfd int, name string, err error) error {
	if err != unix.EPERM {
		return fmt.Errorf("remove: %w", err)
	}
	why := "immutable or append-only?"
	if w := flagWords(dirfd, name, unix.AT_SYMLINK_NOFOLLOW); w != "" {
		why = "the entry is " + w
	} else if w := flagWords(dirfd, "", unix.AT_EMPTY_PATH); w != "" {
		why = "its directory is " + w
	}
	return fmt.Errorf("remove: %w: %s", err, why)
}

// flagWords names the immutable or append-only flag of an inode, or "".
func flagWords(dirfd int, name string, flags int) string {
	var stx unix.Statx_t
	if unix.Statx(dirfd, name, flags, 0, &stx) != nil {
		return ""
	}
	switch a := stx.Attributes & stx.Attributes_mask; {
	case a&unix.STATX_ATTR_IMMUTABLE != 0:
		return "immutable (chattr -i clears it)"
	case a&unix.STATX_ATTR_APPEND != 0:
		return "append-only (chattr -a clears it)"
	}
	return ""
}

// prepareDir makes the directory open as fd (and closed here) hold the
// right type at every name of d: it removes what the snapshot lacks,
// replaces entries of the wrong type, keeps unchanged files and creates
// the rest; files to write get their final size, as holes. Subdirectories
// continue on the pool.
func (x *restorer) prepareDir(ctx context.Context, g *errgroup.Group, fd int, d *rdir) error {
	defer unix.Close(fd)
	x.noteDefaultACL(fd, d)
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
			if errors.Is(err, errMountInside) {
				// The rest of the restore goes on; the mount stays, listed.
				x.skip(joinRel(d.rel, name), "not removed: "+err.Error())
				continue
			}
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
// that the directories above it do not add theirs. With sub set, path is
// relative to an entry being removed, and atPath prefixes the entry's.
type pathError struct {
	path string
	err  error
	sub  bool
}

func (e *pathError) Error() string { return fmt.Sprintf("%q: %v", elidePath(e.path), e.err) }
func (e *pathError) Unwrap() error { return e.err }

func atPath(path string, err error) error {
	var pe *pathError
	switch {
	case errors.As(err, &pe) && pe.sub:
		return &pathError{path: joinRel(path, pe.path), err: pe.err}
	case pe != nil || errors.Is(err, context.Canceled):
		return err
	}
	return &pathError{path: path, err: err}
}

// below attributes err to name, inside a directory being removed.
func below(name string, err error) error {
	var pe *pathError
	switch {
	case errors.As(err, &pe) && pe.sub:
		return &pathError{path: name + "/" + pe.path, err: pe.err, sub: true}
	case errors.Is(err, context.Canceled):
		return err
	}
	return &pathError{path: name, err: err, sub: true}
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
	if exists && st.Mode&unix.S_IFMT == unix.S_IFDIR && x.ownedAsRestored(st) {
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
		if x.ownedAsRestored(st) && x.unchanged(fd, joinRel(d.rel, n.Name), n, st) {
			f.write = false
			if n.LinkID == 0 || x.linkNames[n.LinkID] < 2 {
				x.countKept(f) // a group's leader is counted by checkLinkGroups
			}
			return nil
		}
		if x.rewrite {
			// After an unfinished run (restorer.rewrite): no second copy.
			if err := unix.Unlinkat(fd, n.Name, 0); err != nil {
				return fmt.Errorf("remove: %w", err)
			}
			return x.createPlaceholder(fd, d, i)
		}
		if err := x.createTemp(fd, f); err != nil {
			return err
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

// createTemp creates f under a temporary name beside its final one; the
// metadata pass renames it over the old file. The old version stays whole
// until the new one is, and whatever else links the old inode keeps it
// unchanged.
func (x *restorer) createTemp(dirfd int, f *rfile) error {
	for {
		f.tmp = tempName()
		err := x.createFile(dirfd, f.tmp, f.node.Size)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			f.tmp = ""
			return err
		}
	}
}

// countKept accounts for a file kept as it was.
func (x *restorer) countKept(f *rfile) {
	x.filesUnchanged.Add(1)
	x.progressFile(int64(f.node.Size))
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
// (possibly outside the target); checkLinkGroups then checks that a
// group's links are its own names.
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

// keepable reports whether an existing symlink or FIFO may stay: one
// link (a symlink or FIFO hard-linked from elsewhere would have its owner
// and mtime set through this name) and, when Untrusted, the restoring
// user's.
func (x *restorer) keepable(st *unix.Stat_t) bool {
	return st.Nlink == 1 && x.ownedAsRestored(st)
}

func (x *restorer) prepareSymlink(ctx context.Context, fd int, d *rdir, i int, exists bool, st *unix.Stat_t) error {
	n := &d.tree.Nodes[i]
	if exists {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && x.keepable(st) {
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
		if st.Mode&unix.S_IFMT == unix.S_IFIFO && x.keepable(st) {
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
