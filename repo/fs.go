package repo

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// fsTreeCacheBytes bounds the decoded trees one SnapshotFS keeps (an
// estimate: treeCost). The repository's tree cache below it keeps the
// encoded trees of whole tree packs.
const fsTreeCacheBytes = 16 << 20

// SnapshotFS is a snapshot as a read-only file system. It implements
// fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS; every method is safe
// for concurrent use. Get one with Repository.FS and Close it when done.
//
// # Names
//
// Names are io/fs names: slash-separated, unrooted, "." for the root, no
// "." or ".." elements, no empty elements (fs.ValidPath), with one
// exception: bytes that are not UTF-8 are accepted, because a snapshot's
// names are Linux names (any bytes but "/" and NUL), and a name that
// ReadDir lists must also open. A name that fails the other rules is
// refused with fs.ErrInvalid.
//
// # Symbolic links are never followed
//
// Open, Stat and Lstat all describe the named entry itself, so Stat and
// Lstat are the same, and a path through a symlink (a symlink as a
// non-final element) does not exist (fs.ErrNotExist, naming the link).
// Opening a symlink gives a File whose Stat reports fs.ModeSymlink and
// whose Read fails; ReadLink returns its target. io/fs does not require
// Open to follow links (fstest.TestFS accepts either), and following
// them cannot be right for a snapshot: a link's target was meant for the
// machine the backup ran on (an absolute target names that host's files,
// which this FS must never serve), a dangling link could not be opened at
// all, and a FUSE mount or an archive writer above this FS wants the
// link, not its target. A caller that wants resolution within the
// snapshot does it with ReadLink, on its own terms.
//
// # Entries
//
// FileInfo.Mode maps the node's type (fs.ModeDir, fs.ModeSymlink,
// fs.ModeNamedPipe) and its permission bits, setuid, setgid and sticky
// (fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky). ModTime is the node's
// mtime to the nanosecond. Size is a file's length, a symlink's target
// length, and 0 for the rest. Sys returns a *NodeSys (owner, mode bits,
// mtime in ns, xattrs, hard-link group) for every entry but the root,
// which a snapshot records nothing about: its FileInfo is a directory of
// mode 0755 (what a restore creates) with the snapshot's creation time,
// and Sys returns nil.
//
// # Reading files
//
// An open regular file implements io.Reader, io.ReaderAt and io.Seeker.
// ReadAt may be called from many goroutines at once (also while Read and
// Seek run on the same file); Read and Seek share one offset, as
// os.File's do. A read maps its range to the file's chunks, and fetches
// each chunk's whole frame with one range read unless the FS's frame
// cache (32 MiB, shared by its files) holds it; every blob is checked
// against its BLAKE3 ID before its bytes are served. So a read of 4 KiB
// costs at most one frame's GET (two across a chunk boundary), and a
// sequential read fetches each frame once. When the repository's store is
// the host cache (store/cache), the range reads go through it, and it
// fetches a pack it lacks whole, once for every reader on the host. An
// all-zero chunk (a hole) is an ordinary chunk, stored once and served
// from the cache. An open file also keeps the chunk it read last (at most
// the chunker's MaxSize) until it reads another or is closed. A missing
// or damaged pack fails the read with an error naming the file and the
// pack. A named pipe reads as empty (a snapshot holds no data for it).
//
// # Cost of listing
//
// Directories are loaded when a lookup or a listing reaches them, through
// the repository's tree cache, and kept in a bounded cache (16 MiB). A
// lookup loads one tree per path element, so its work is bounded by the
// name it is given, however the snapshot's trees nest or repeat; a
// ReadDir allocates one entry per entry of the directory's tree, which the
// tree decoder bounds by the tree's size.
type SnapshotFS struct {
	r     *Repository
	id    chunk.ID
	root  *manifest.Tree
	ctime time.Time // the snapshot's creation time: the root's ModTime
	trees *lru[chunk.ID, *manifest.Tree]
	blobs *blobReader

	// ctx governs every read; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	lease  *lease // nil when the store refused one

	closed    atomic.Bool
	closeOnce sync.Once
}

var (
	_ fs.ReadDirFS  = (*SnapshotFS)(nil)
	_ fs.StatFS     = (*SnapshotFS)(nil)
	_ fs.ReadLinkFS = (*SnapshotFS)(nil)
)

// FS opens snapshot id for reading as a file system. It fails with
// ErrSnapshotNotFound, or ErrExpired when the snapshot's TTL has passed
// (by the store's clock, as Restore judges it).
//
// The FS holds a lease, as a restore does, renewed until Close: gc does
// not delete a pack the FS may read while it is open, even when the
// snapshot expires meanwhile or gc repacks its blobs. A store that refuses
// the lease (a read-only token) is read without one, with the host's clock
// for expiry, as Restore does.
//
// ctx governs the FS's whole life: the lease's renewals and every read
// (fs methods take no context) stop when it ends. Close ends both.
func (r *Repository) FS(ctx context.Context, id chunk.ID) (*SnapshotFS, error) {
	snap, err := r.Snapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &SnapshotFS{
		r: r, id: id, ctime: snap.Created, ctx: fctx, cancel: cancel,
		trees: newLRU[chunk.ID, *manifest.Tree](fsTreeCacheBytes),
		blobs: newBlobReader(r),
	}
	l, now, err := r.acquireLease(fctx, "fs")
	if err != nil {
		r.opts.Logf("reading snapshot %s without a lease: %v", id.Str(), err)
		now = r.opts.Now()
	} else {
		f.lease = l
		if _, err := r.refreshGCView(fctx); err != nil {
			f.Close()
			return nil, err
		}
	}
	if snap.Expires != nil && !now.Before(*snap.Expires) {
		f.Close()
		return nil, fmt.Errorf("%w: snapshot %s expired at %s", ErrExpired, id, snap.Expires.UTC().Format(time.RFC3339))
	}
	if f.root, err = f.tree(snap.Tree); err != nil {
		f.Close()
		return nil, fmt.Errorf("repo: snapshot %s: root directory: %w", id.Str(), err)
	}
	return f, nil
}

// ID returns the snapshot's ID.
func (f *SnapshotFS) ID() chunk.ID { return f.id }

// Close releases the FS's lease and ends its reads: files opened from it
// fail afterwards (fs.ErrClosed or context.Canceled). It always returns
// nil; closing twice does nothing more.
func (f *SnapshotFS) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.cancel()
		f.lease.release(f.ctx)
	})
	return nil
}

// Open opens the named entry without following symlinks (see the type's
// documentation). A directory's File implements fs.ReadDirFile; a regular
// file's implements io.ReaderAt and io.Seeker.
func (f *SnapshotFS) Open(name string) (fs.File, error) {
	e, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	switch {
	case e.isDir():
		t, err := f.dirTree(e)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{ent: e, fsys: f, tree: t}, nil
	case e.node.Type == manifest.TypeFile:
		return f.openFile(e)
	}
	return &otherFile{ent: e}, nil
}

// Stat describes the named entry itself, a symlink included: it is Lstat.
func (f *SnapshotFS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return e.info(), nil
}

// Lstat describes the named entry; it never follows a symlink.
func (f *SnapshotFS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return e.info(), nil
}

// ReadLink returns the target of the named symlink, as the backup read it.
// An entry that is not a symlink fails with fs.ErrInvalid.
func (f *SnapshotFS) ReadLink(name string) (string, error) {
	e, err := f.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.isDir() || e.node.Type != manifest.TypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fmt.Errorf("not a symbolic link: %w", fs.ErrInvalid)}
	}
	return e.node.Target, nil
}

// ReadDir lists the named directory, sorted by name.
func (f *SnapshotFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	t, err := f.dirTree(e)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return dirEntries(t.Nodes), nil
}

// errNotDir is the reason ReadDir gives for a name that is not a directory.
var errNotDir = fmt.Errorf("not a directory: %w", fs.ErrInvalid)

// fsEntry is a name found in the snapshot.
type fsEntry struct {
	name  string         // as the caller gave it
	node  *manifest.Node // nil for the root
	ctime time.Time      // the root's ModTime
}

func (e fsEntry) isDir() bool { return e.node == nil || e.node.Type == manifest.TypeDir }

func (e fsEntry) info() fs.FileInfo {
	if e.node == nil {
		return rootInfo{ctime: e.ctime}
	}
	return nodeInfo{e.node}
}

// validName is fs.ValidPath without its UTF-8 rule (see SnapshotFS):
// invalid bytes are replaced by a valid rune before the check, which
// keeps every '/' and '.' where it was.
func validName(name string) bool {
	return fs.ValidPath(strings.ToValidUTF8(name, "\uFFFD"))
}

// lookup finds name, one tree per path element, never through a symlink.
// Errors are *fs.PathError with op and name.
func (f *SnapshotFS) lookup(op, name string) (fsEntry, error) {
	switch {
	case !validName(name):
		return fsEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	case f.closed.Load():
		return fsEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrClosed}
	case name == ".":
		return fsEntry{name: name, ctime: f.ctime}, nil
	}
	t, rest := f.root, name
	for {
		elem, more, deeper := strings.Cut(rest, "/")
		n, ok := t.Find(elem)
		if !ok {
			return fsEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if !deeper {
			return fsEntry{name: name, node: n}, nil
		}
		at := name[:len(name)-len(more)-1]
		var err error
		switch n.Type {
		case manifest.TypeDir:
			t, err = f.tree(n.Subtree)
		case manifest.TypeSymlink:
			err = fmt.Errorf("%s is a symbolic link, which this file system does not follow: %w", at, fs.ErrNotExist)
		default:
			err = fmt.Errorf("%s is not a directory: %w", at, fs.ErrNotExist)
		}
		if err != nil {
			return fsEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		rest = more
	}
}

// dirTree returns the tree of directory entry e.
func (f *SnapshotFS) dirTree(e fsEntry) (*manifest.Tree, error) {
	if e.node == nil {
		return f.root, nil
	}
	return f.tree(e.node.Subtree)
}

// tree returns tree id, decoded, from the FS's cache or the repository's.
func (f *SnapshotFS) tree(id chunk.ID) (*manifest.Tree, error) {
	if t, ok := f.trees.get(id); ok {
		return t, nil
	}
	t, err := f.r.loadTree(f.ctx, id)
	if err != nil {
		return nil, err
	}
	f.trees.add(id, t, treeCost(t))
	return t, nil
}

// treeCost estimates the memory a decoded tree holds.
func treeCost(t *manifest.Tree) int {
	const perNode = 160 // manifest.Node and slice headers, rounded up
	n := 64
	for i := range t.Nodes {
		nd := &t.Nodes[i]
		n += perNode + len(nd.Name) + len(nd.Target) + len(nd.Content)*chunk.IDSize
		for _, x := range nd.Xattrs {
			n += 40 + len(x.Name) + len(x.Value)
		}
	}
	return n
}

// NodeSys is what FileInfo.Sys returns for every entry of a SnapshotFS
// but the root: the node's metadata as the backup recorded it.
//
// It is a copy rather than the *manifest.Node: a node also carries its
// chunk IDs or subtree ID, which are storage details that the planned blob
// layer may change how callers reach, and a pointer into the FS's cached
// trees would let a caller's write change what the FS serves. Each call of
// Sys returns a new NodeSys; the caller may keep and modify it.
type NodeSys struct {
	Type manifest.NodeType
	// Mode is st_mode & 07777: the permission bits plus setuid (04000),
	// setgid (02000) and sticky (01000).
	Mode    uint32
	UID     uint32
	GID     uint32
	MtimeNs int64 // Unix time in nanoseconds
	// Xattrs are the extended attributes the backup recorded (user.*,
	// POSIX ACLs, file capabilities), sorted by name.
	Xattrs []manifest.Xattr
	// LinkID groups hard links: every name of one inode in this snapshot
	// has the same nonzero LinkID; a file with one name has 0. IDs are
	// numbered per snapshot.
	LinkID uint64
}

// nodeInfo is the fs.FileInfo (and fs.DirEntry) of a node.
type nodeInfo struct{ n *manifest.Node }

var _ fs.DirEntry = nodeInfo{}

func (i nodeInfo) Name() string               { return i.n.Name }
func (i nodeInfo) Mode() fs.FileMode          { return nodeMode(i.n) }
func (i nodeInfo) Type() fs.FileMode          { return nodeMode(i.n).Type() }
func (i nodeInfo) ModTime() time.Time         { return time.Unix(0, i.n.MtimeNs) }
func (i nodeInfo) IsDir() bool                { return i.n.Type == manifest.TypeDir }
func (i nodeInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i nodeInfo) String() string             { return fs.FormatFileInfo(i) }

func (i nodeInfo) Size() int64 {
	switch i.n.Type {
	case manifest.TypeFile:
		return int64(i.n.Size)
	case manifest.TypeSymlink:
		return int64(len(i.n.Target))
	}
	return 0
}

// Sys returns a new *NodeSys.
func (i nodeInfo) Sys() any {
	n := i.n
	x := make([]manifest.Xattr, len(n.Xattrs))
	for k, a := range n.Xattrs {
		x[k] = manifest.Xattr{Name: a.Name, Value: slices.Clone(a.Value)}
	}
	return &NodeSys{Type: n.Type, Mode: n.Mode, UID: n.UID, GID: n.GID, MtimeNs: n.MtimeNs, Xattrs: x, LinkID: n.LinkID}
}

// nodeMode maps a node's type and mode bits to an fs.FileMode.
func nodeMode(n *manifest.Node) fs.FileMode {
	m := fs.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case manifest.TypeDir:
		m |= fs.ModeDir
	case manifest.TypeSymlink:
		m |= fs.ModeSymlink
	case manifest.TypeFIFO:
		m |= fs.ModeNamedPipe
	}
	return m
}

// rootInfo is the root's FileInfo (see SnapshotFS).
type rootInfo struct{ ctime time.Time }

func (rootInfo) Name() string         { return "." }
func (rootInfo) Size() int64          { return 0 }
func (rootInfo) Mode() fs.FileMode    { return fs.ModeDir | 0o755 }
func (i rootInfo) ModTime() time.Time { return i.ctime }
func (rootInfo) IsDir() bool          { return true }
func (rootInfo) Sys() any             { return nil }

// dirEntries returns the entries of a directory's nodes, in their order.
func dirEntries(nodes []manifest.Node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(nodes))
	for i := range nodes {
		out[i] = nodeInfo{&nodes[i]}
	}
	return out
}
