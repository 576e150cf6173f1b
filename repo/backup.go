package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
)

// BackupOptions control one backup.
type BackupOptions struct {
	Name string
	// TTL sets the snapshot's expiry; 0 means it never expires.
	TTL time.Duration
	// Parent is an earlier snapshot of the same directory: files whose
	// size and mtime match the parent's entry reuse its chunk list
	// without being read.
	Parent chunk.ID
	// Excludes are glob patterns (path.Match syntax). A pattern without a
	// slash matches an entry's name at any depth; one with a slash
	// matches its path relative to the backup root.
	Excludes []string
	// SkipUnreadable records unreadable files and directories (and
	// directories that vanish between their parent's listing and their
	// own) in Stats.Skipped and leaves them out instead of failing the
	// backup. The backup root itself must be readable.
	SkipUnreadable bool
	// AutoParent takes as Parent the snapshot this directory was last
	// restored from or backed up as on this host (from the files cache;
	// none if there is no cache entry or that snapshot is gone).
	AutoParent bool
	// Reread reads every file, trusting neither the parent nor the files
	// cache.
	Reread bool
	// Progress, if set, is updated as files are processed.
	Progress *Progress

	// dirFDs bounds the idle directory descriptors the walk keeps open
	// (dirPool); zero takes dirFDBudget. Tests set it low.
	dirFDs int
}

// Backup snapshots dir into the repository and returns its handle. It
// commits nothing unless every entry was saved (or, with SkipUnreadable,
// reported in Stats.Skipped).
func (r *Repository) Backup(ctx context.Context, dir string, opts BackupOptions) (Handle, error) {
	start := time.Now()
	if opts.Name != "" {
		if err := manifest.ValidSnapshotName(opts.Name); err != nil {
			return Handle{}, err
		}
	}
	for _, p := range opts.Excludes {
		if _, err := path.Match(p, ""); err != nil {
			return Handle{}, fmt.Errorf("repo: exclude pattern %q: %w", p, err)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Handle{}, fmt.Errorf("repo: backup %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Handle{}, fmt.Errorf("repo: backup source %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return Handle{}, fmt.Errorf("repo: backup source %s: %w", dir, ErrNotDir)
	}
	if err := checkNoMarker(abs); err != nil {
		return Handle{}, err // a half-restored directory: ErrIncomplete
	}
	// gc protocol (gc_writer.go): the lease first, then gc's state, before
	// anything is looked up in the index. The lease ends after the commit
	// (or the failure): the snapshot exists before gc can see the lease end.
	l, _, err := r.acquireLease(ctx, "backup")
	if err != nil {
		return Handle{}, err
	}
	defer l.release(ctx)
	if _, err := r.refreshGCView(ctx); err != nil {
		return Handle{}, err
	}
	var fc *filesCache
	if !opts.Reread {
		fc = r.loadFilesCache(abs)
	}
	if opts.AutoParent && opts.Parent.IsZero() && fc != nil {
		if _, err := r.Snapshot(ctx, fc.Snapshot); err == nil {
			opts.Parent = fc.Snapshot
		} else {
			r.opts.Logf("files cache of %s names snapshot %s: %v; backing up without a parent", abs, fc.Snapshot.Str(), err)
		}
	}
	if fc != nil && fc.Snapshot != opts.Parent {
		fc = nil // it describes another snapshot's files
	}
	var parentTree chunk.ID
	if !opts.Parent.IsZero() {
		ps, err := r.Snapshot(ctx, opts.Parent)
		if err != nil {
			return Handle{}, fmt.Errorf("repo: parent: %w", err)
		}
		parentTree = ps.Tree
	}

	b := newBackup(r, abs, opts)
	b.writer = strings.TrimPrefix(l.name, leasePrefix) // the snapshot names its writer's lease
	b.fcOld = fc
	if r.opts.CacheDir != "" {
		b.fcNew = newFilesCache(fcSize(fc))
	}
	root, err := b.run(ctx, parentTree)
	if err != nil {
		return Handle{}, err
	}
	if r.beforeCommit != nil {
		r.beforeCommit()
	}
	// The store's time stamps the snapshot, and the lease must not have
	// lapsed; then reused blobs that gc condemned meanwhile are uploaded
	// again, before the index delta is written.
	now, err := l.check(ctx)
	if err != nil {
		return Handle{}, err
	}
	if err := b.reuploadCondemned(ctx); err != nil {
		return Handle{}, err
	}
	return b.commit(ctx, root, start, now)
}

// backup is the state of one running backup.
type backup struct {
	r    *Repository
	root string
	opts BackupOptions

	jobs    chan *fileJob
	uploads chan pack.Packed
	pool    *dirPool

	// noXattrat is set once listxattrat fails with ENOSYS (atXattrs).
	noXattrat atomic.Bool

	treeMu sync.Mutex // guards treeW
	treeW  *pack.Writer
	// dirWG counts the goroutines that save directory trees; uploads is
	// closed only after they are all done, because they ship tree packs.
	dirWG sync.WaitGroup
	// listWG counts directory listings running on their own goroutines
	// (at most cap(listSem) at once); jobs is closed after they finish.
	listWG  sync.WaitGroup
	listSem chan struct{}

	writer string // the lease ID, recorded in the snapshot

	// fcOld is the files cache of the parent snapshot, if any; fcNew
	// collects this backup's, written after the commit.
	fcOld, fcNew *filesCache

	mu      sync.Mutex // guards the fields below
	added   map[chunk.ID]struct{}
	reused  map[chunk.ID]struct{} // blobs taken from the index (gc_writer.go)
	entries []pack.Entry
	skipped []Skipped
	links   map[linkKey]*linkGroup // hard-linked inodes met so far (backup_links.go)
	changed []string

	files, dirs, symlinks, other, bytes atomic.Uint64
	filesRead, bytesRead, filesReused   atomic.Uint64
	blobsNew, bytesNew                  atomic.Uint64
	packs, uploaded                     atomic.Uint64
}

func newBackup(r *Repository, root string, opts BackupOptions) *backup {
	return &backup{
		r: r, root: root, opts: opts,
		jobs:    make(chan *fileJob, 64),
		uploads: make(chan pack.Packed),
		treeW:   r.newPackWriter(r.cfg.TreePackSize),
		added:   make(map[chunk.ID]struct{}),
		reused:  make(map[chunk.ID]struct{}),
		listSem: make(chan struct{}, r.opts.Workers),
		pool:    newDirPool(opts.dirFDs),
	}
}

// abs returns the full path of rel, for messages: every filesystem call
// of the backup is relative to a directory descriptor (backup_dirs.go).
func (b *backup) abs(rel string) string {
	return filepath.Join(b.root, rel)
}

// newPackWriter returns a writer for a pack of about target bytes; its
// buffer fits the target plus the largest chunk, so it never regrows. Data
// packs reuse the buffers of packs already uploaded (recyclePack).
func (r *Repository) newPackWriter(target int) *pack.Writer {
	hint := target + int(r.cfg.Chunker.MaxSize) + 64<<10
	opts := pack.Options{FrameSize: r.cfg.FrameSize, SizeHint: hint}
	if target >= r.cfg.DataPackSize {
		select {
		case b := <-r.packBufs:
			if cap(b) >= hint {
				opts.Buffer = b
			}
		default:
		}
	}
	return pack.NewWriter(r.enc, opts)
}

// recyclePack keeps an uploaded pack's buffer for the next data pack.
func (r *Repository) recyclePack(data []byte) {
	if cap(data) < r.cfg.DataPackSize {
		return
	}
	select {
	case r.packBufs <- data[:0]:
	default: // enough kept; the GC takes it
	}
}

// fileJob asks a worker to read one file into node. The job holds a
// reference to dir, which the worker's open of the file ends.
type fileJob struct {
	dir  *dirRef
	name string
	rel  string
	node *manifest.Node
	st   *unix.Stat_t
	done func(error)
	// group is the hard-link group of a file with several names
	// (backup_links.go); stable is set by the worker when the file did
	// not change while it was read.
	group  *linkGroup
	stable bool
}

// future is the eventual ID of a directory's tree. skipped means the
// directory could not be read and is left out (SkipUnreadable).
type future struct {
	done    chan struct{}
	id      chunk.ID
	skipped bool
	err     error
}

func (f *future) wait(ctx context.Context) (chunk.ID, error) {
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		return chunk.ID{}, ctx.Err()
	}
}

// fail completes f with err.
func (f *future) fail(err error) *future {
	f.err = err
	close(f.done)
	return f
}

// run walks the tree, reads files on worker goroutines and uploads packs,
// and returns the root tree's ID once every pack is stored.
func (b *backup) run(ctx context.Context, parentTree chunk.ID) (chunk.ID, error) {
	fd, err := unix.Open(b.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return chunk.ID{}, fmt.Errorf("%w: backup source %s: %w", ErrUnreadable, b.root, err)
	}
	root := b.pool.root(fd)
	// After g.Wait: the walk and the workers, which use descriptors, are done.
	defer b.pool.closeAll(root)
	g, ctx := errgroup.WithContext(ctx)
	var workers sync.WaitGroup
	for range b.r.opts.Workers {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return b.worker(ctx)
		})
	}
	var uploaders sync.WaitGroup
	for range b.r.opts.Uploads {
		uploaders.Add(1)
		g.Go(func() error {
			defer uploaders.Done()
			return b.uploader(ctx)
		})
	}
	var rootID chunk.ID
	g.Go(func() error {
		defer func() {
			workers.Wait()
			b.dirWG.Wait()
			close(b.uploads)
		}()
		id, err := b.walkRoot(ctx, root, parentTree)
		if err != nil {
			return err
		}
		workers.Wait()
		if err := b.flushTrees(ctx); err != nil {
			return err
		}
		rootID = id
		return nil
	})
	if err := g.Wait(); err != nil {
		return chunk.ID{}, err
	}
	return rootID, nil
}

// walkRoot walks the whole tree and returns the root tree's ID once every
// directory's tree is saved. It closes the workers' queue once every file
// is queued.
func (b *backup) walkRoot(ctx context.Context, root *dirRef, parentTree chunk.ID) (chunk.ID, error) {
	defer close(b.jobs)
	var pt *manifest.Tree
	if !parentTree.IsZero() {
		t, err := b.r.loadTree(ctx, parentTree)
		if err != nil {
			return chunk.ID{}, fmt.Errorf("repo: parent tree: %w", err)
		}
		pt = t
	}
	f := b.walkDir(ctx, root, pt, nil)
	b.listWG.Wait()
	return f.wait(ctx)
}

// listDir walks a subdirectory on a goroutine of its own when a slot is
// free, so that listing and lstat, the whole cost of a backup in which
// nothing changed, use every core; otherwise it walks it in place.
func (b *backup) listDir(ctx context.Context, d *dirRef, parent *manifest.Tree, self *manifest.Node) <-chan *future {
	fc := make(chan *future, 1)
	select {
	case b.listSem <- struct{}{}:
		b.listWG.Add(1)
		go func() {
			defer b.listWG.Done()
			fc <- b.walkDir(ctx, d, parent, self)
			<-b.listSem
		}()
	default:
		fc <- b.walkDir(ctx, d, parent, self)
	}
	return fc
}

// dirWalk is the walk of one directory: open and list it (open), describe
// each entry (entry), then hand its files to the workers and its
// subdirectories to listDir (dispatch); finish saves its tree once they
// are all done.
type dirWalk struct {
	b *backup
	d *dirRef
	// parent is the parent snapshot's tree of this directory, if any.
	parent *manifest.Tree
	// self is this directory's entry in its parent's tree (nil for the
	// root), whose xattrs are read through the descriptor opened here.
	self *manifest.Node
	// nodes has the capacity of the listing and never reallocates, so
	// pointers into it stay valid while workers and subdirectory walks
	// fill nodes in.
	nodes []manifest.Node
	files []*fileJob
	subs  []subdir

	pending sync.WaitGroup // queued files not yet read
	errMu   sync.Mutex
	err     error // the first failure of a file or subdirectory
}

// subdir is a subdirectory found by the listing.
type subdir struct {
	i      int // its index in nodes
	name   string
	st     unix.Stat_t
	parent *manifest.Tree // its tree in the parent snapshot, if any
	fc     <-chan *future // delivers its future once listed
}

// walkDir lists d, queues its files, starts the walks of its
// subdirectories and returns at once; a goroutine saves the directory's
// tree when all of its children are done, so the walk never waits for
// reads.
func (b *backup) walkDir(ctx context.Context, d *dirRef, parent *manifest.Tree, self *manifest.Node) *future {
	f := &future{done: make(chan struct{})}
	w := &dirWalk{b: b, d: d, parent: parent, self: self}
	fd, names, err := w.open()
	if err != nil {
		return b.unreadableDir(f, d, err)
	}
	w.nodes = make([]manifest.Node, 0, len(names))
	for _, name := range names {
		if err := w.entry(ctx, fd, name); err != nil {
			b.pool.done(d)
			return f.fail(err)
		}
	}
	b.pool.handOff(d, len(w.files)+len(w.subs))
	if err := w.dispatch(ctx); err != nil {
		return f.fail(err)
	}
	b.dirWG.Add(1)
	go func() {
		defer b.dirWG.Done()
		w.finish(ctx, f)
	}()
	return f
}

// open pins the directory's descriptor (opening it from its parent's the
// first time), lists it and reads its own xattrs. On success the
// descriptor stays pinned for the entries' calls; on failure the walk's
// reference is gone.
func (w *dirWalk) open() (int, []string, error) {
	p := w.b.pool
	var fd int
	var err error
	if w.d.parent == nil {
		fd, err = p.pin(w.d) // the root, open since run
	} else {
		fd, err = p.openNew(w.d)
	}
	if err != nil {
		p.release(w.d)
		return -1, nil, err
	}
	names, err := listNames(fd)
	if err != nil {
		p.done(w.d)
		return -1, nil, fmt.Errorf("list: %w", err)
	}
	if w.self != nil {
		xs, err := storedXattrs(fdXattrs(fd))
		if err != nil {
			p.done(w.d)
			return -1, nil, fmt.Errorf("xattrs: %w", err)
		}
		w.self.Xattrs = xs
	}
	return fd, names, nil
}

// unreadableDir completes f for a directory that could not be opened,
// listed or have its xattrs read: left out and reported in Skipped with
// SkipUnreadable, a failure naming it otherwise. An unreadable backup
// root always fails.
func (b *backup) unreadableDir(f *future, d *dirRef, err error) *future {
	if d.parent != nil && b.skip(d.rel, err) {
		f.skipped = true
		close(f.done)
		return f
	}
	return f.fail(fmt.Errorf("%w: directory %s: %w", ErrUnreadable, b.abs(d.rel), err))
}

// entry describes the entry name of the directory open as fd and adds it
// to nodes; an entry that cannot be described is left out and reported
// with SkipUnreadable, and fails the walk otherwise.
func (w *dirWalk) entry(ctx context.Context, fd int, name string) error {
	b := w.b
	rel := path.Join(w.d.rel, name)
	if b.excluded(rel, name) {
		return nil
	}
	var st unix.Stat_t
	// Relative to the directory's descriptor, as find does: no
	// resolution of the whole path for every entry.
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed since the listing: not part of this snapshot
		}
		return b.skipOr(rel, fmt.Errorf("repo: lstat %s: %w", b.abs(rel), err))
	}
	n, ok, err := b.nodeOf(fd, name, rel, &st)
	if err != nil || !ok {
		return b.skipOr(rel, err)
	}
	var pn *manifest.Node
	if w.parent != nil {
		pn = findNode(w.parent, name)
	}
	w.nodes = append(w.nodes, n)
	if err := w.place(ctx, fd, len(w.nodes)-1, rel, &st, pn); err != nil {
		w.nodes = w.nodes[:len(w.nodes)-1]
		return b.skipOr(rel, fmt.Errorf("repo: %s: %w", b.abs(rel), err))
	}
	return nil
}

// place decides where the content and xattrs of nodes[i] come from, by
// kind: a subdirectory's from its own walk, a file's from the parent
// snapshot or a worker, a FIFO's xattrs from its directory's descriptor.
// Symlinks carry none of the xattrs a snapshot stores.
func (w *dirWalk) place(ctx context.Context, fd, i int, rel string, st *unix.Stat_t, pn *manifest.Node) error {
	b, n := w.b, &w.nodes[i]
	switch n.Type {
	case manifest.TypeDir:
		w.subs = append(w.subs, subdir{i: i, name: n.Name, st: *st, parent: b.parentSubtree(ctx, rel, pn)})
		b.dirs.Add(1)
	case manifest.TypeFile:
		return w.file(fd, n, rel, st, pn)
	case manifest.TypeSymlink:
		b.symlinks.Add(1)
	case manifest.TypeFIFO:
		xs, err := storedXattrs(b.atXattrs(fd, n.Name))
		if err != nil {
			return fmt.Errorf("xattrs: %w", err)
		}
		n.Xattrs = xs
		b.other.Add(1)
	}
	return nil
}

// parentSubtree loads the parent snapshot's tree of the subdirectory rel,
// if the parent has one; without it, the subdirectory's files are read.
func (b *backup) parentSubtree(ctx context.Context, rel string, pn *manifest.Node) *manifest.Tree {
	if pn == nil || pn.Type != manifest.TypeDir {
		return nil
	}
	t, err := b.r.loadTree(ctx, pn.Subtree)
	if err != nil {
		b.r.opts.Logf("parent tree of %s unreadable, reading everything: %v", rel, err)
		return nil
	}
	return t
}

// file takes a regular file over from the parent snapshot when it is
// unchanged, or queues it for a worker, which reads its content and
// xattrs through the descriptor it opens. A file that the files cache
// vouches for keeps the parent's xattrs without a listxattr call: setting
// an xattr changes the ctime, which the cache entry pins. That call is a
// third of a no-change backup's time.
func (w *dirWalk) file(fd int, n *manifest.Node, rel string, st *unix.Stat_t, pn *manifest.Node) error {
	b := w.b
	var g *linkGroup
	if n.LinkID != 0 {
		g = b.linkGroup(st)
		defer g.mu.Unlock()
		if g.decided {
			return w.linkedName(g, n, rel, st)
		}
		g.decided = true
	}
	cc := b.checkCache(rel, st, pn)
	reused := b.reuse(n, pn, cc)
	if reused && cc.vouches {
		n.Xattrs = pn.Xattrs
	} else if reused {
		xs, err := storedXattrs(b.atXattrs(fd, n.Name))
		if err != nil {
			return fmt.Errorf("xattrs: %w", err)
		}
		n.Xattrs = xs
	}
	b.files.Add(1)
	b.bytes.Add(uint64(st.Size))
	if b.opts.Progress != nil {
		b.opts.Progress.TotalFiles.Add(1)
		b.opts.Progress.TotalBytes.Add(st.Size)
	}
	if reused {
		if g != nil {
			g.reused, g.node, g.st = true, *n, *st
		}
		b.rememberReused(rel, st, n, cc)
		b.filesReused.Add(1)
		b.progress(st.Size)
		return nil
	}
	w.files = append(w.files, &fileJob{dir: w.d, name: n.Name, rel: rel, st: st, node: n, done: w.fileDone, group: g})
	return nil
}

// linkedName handles a further name of an inode whose first name the walk
// has met: it copies the node taken over from the parent, or is queued so
// that a worker copies the node the inode's read gives (saveLinked).
func (w *dirWalk) linkedName(g *linkGroup, n *manifest.Node, rel string, st *unix.Stat_t) error {
	b := w.b
	b.files.Add(1)
	if b.opts.Progress != nil {
		b.opts.Progress.TotalFiles.Add(1)
		b.opts.Progress.TotalBytes.Add(st.Size)
	}
	if !g.reused {
		b.bytes.Add(uint64(st.Size))
		w.files = append(w.files, &fileJob{dir: w.d, name: n.Name, rel: rel, st: st, node: n, done: w.fileDone, group: g})
		return nil
	}
	copyInode(n, &g.node)
	b.bytes.Add(n.Size)
	b.noteReused(n.Content...)
	b.filesReused.Add(1)
	b.progress(int64(n.Size))
	if b.fcNew != nil && sameStat(st, &g.st) {
		b.fcNew.set(rel, fileStatOf(st, n))
	}
	return nil
}

// fileDone is called by a worker for each of the directory's files.
func (w *dirWalk) fileDone(err error) {
	if err != nil {
		w.setErr(err)
	}
	w.pending.Done()
}

func (w *dirWalk) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

// dispatch queues the directory's files for the workers and starts the
// walks of its subdirectories, once its listing is complete: a directory
// that fails midway queues nothing. Each takes over one of the references
// handOff gave them.
func (w *dirWalk) dispatch(ctx context.Context) error {
	b := w.b
	for i, job := range w.files {
		w.pending.Add(1)
		select {
		case b.jobs <- job:
		case <-ctx.Done():
			w.pending.Done()
			for range len(w.files) - i + len(w.subs) {
				b.pool.release(w.d) // never used
			}
			return ctx.Err()
		}
	}
	for i := range w.subs {
		s := &w.subs[i]
		c := b.pool.child(w.d, s.name, path.Join(w.d.rel, s.name), &s.st)
		s.fc = b.listDir(ctx, c, s.parent, &w.nodes[s.i])
	}
	return nil
}

// finish waits for the directory's files and subdirectories and saves its
// tree. Entries skipped meanwhile (SkipUnreadable) are left out of it.
func (w *dirWalk) finish(ctx context.Context, f *future) {
	defer close(f.done)
	w.pending.Wait()
	for _, s := range w.subs {
		sf := <-s.fc
		id, err := sf.wait(ctx)
		switch {
		case err != nil:
			w.setErr(err)
		case sf.skipped:
			w.nodes[s.i].Type = 0
			w.b.dirs.Add(^uint64(0))
		default:
			w.nodes[s.i].Subtree = id
		}
	}
	if w.err != nil {
		f.err = w.err
		return
	}
	kept := w.nodes[:0]
	for _, n := range w.nodes {
		if n.Type != 0 {
			kept = append(kept, n)
		}
	}
	f.id, f.err = w.b.saveTree(ctx, &manifest.Tree{Nodes: kept})
}
