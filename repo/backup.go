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
	// SkipUnreadable records unreadable files in Stats.Skipped and leaves
	// them out instead of failing the backup.
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
	}
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

// fileJob asks a worker to read one file into node.
type fileJob struct {
	abs  string
	rel  string
	node *manifest.Node
	st   *unix.Stat_t
	done func(error)
}

// future is the eventual ID of a directory's tree.
type future struct {
	done chan struct{}
	id   chunk.ID
	err  error
}

func (f *future) wait(ctx context.Context) (chunk.ID, error) {
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		return chunk.ID{}, ctx.Err()
	}
}

// run walks the tree, reads files on worker goroutines and uploads packs,
// and returns the root tree's ID once every pack is stored.
func (b *backup) run(ctx context.Context, parentTree chunk.ID) (chunk.ID, error) {
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
		// closeJobs lets the workers drain once every job is queued.
		var once sync.Once
		closeJobs := func() { once.Do(func() { close(b.jobs) }) }
		defer closeJobs()
		var pt *manifest.Tree
		if !parentTree.IsZero() {
			t, err := b.r.loadTree(ctx, parentTree)
			if err != nil {
				return fmt.Errorf("repo: parent tree: %w", err)
			}
			pt = t
		}
		f := b.walkDir(ctx, b.root, "", pt)
		b.listWG.Wait()
		closeJobs()
		id, err := f.wait(ctx)
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

// listDir walks a subdirectory on a goroutine of its own when a slot is
// free, so that listing and lstat, the whole cost of a backup in which
// nothing changed, use every core; otherwise it walks it in place.
func (b *backup) listDir(ctx context.Context, abs, rel string, parent *manifest.Tree) <-chan *future {
	fc := make(chan *future, 1)
	select {
	case b.listSem <- struct{}{}:
		b.listWG.Add(1)
		go func() {
			defer b.listWG.Done()
			fc <- b.walkDir(ctx, abs, rel, parent)
			<-b.listSem
		}()
	default:
		fc <- b.walkDir(ctx, abs, rel, parent)
	}
	return fc
}

// walkDir lists dir, queues its files, recurses into its subdirectories
// and returns at once; a goroutine saves the directory's tree when all of
// its children are done, so the walk never waits for reads.
func (b *backup) walkDir(ctx context.Context, abs, rel string, parent *manifest.Tree) *future {
	f := &future{done: make(chan struct{})}
	fail := func(err error) *future {
		f.err = err
		close(f.done)
		return f
	}
	dirfd, ents, err := readDir(abs)
	if err != nil {
		return fail(fmt.Errorf("repo: read directory %s: %w", abs, err))
	}
	defer unix.Close(dirfd)
	nodes := make([]manifest.Node, 0, len(ents))
	type sub struct {
		i  int
		fc <-chan *future // delivers the subdirectory's future once listed
	}
	var subs []sub
	var pending sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	for _, name := range ents {
		crel := path.Join(rel, name)
		if b.excluded(crel, name) {
			continue
		}
		cabs := filepath.Join(abs, name)
		var st unix.Stat_t
		// Relative to the directory's descriptor, as find does: no
		// resolution of the whole path for every entry.
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since the listing: not part of this snapshot
			}
			if b.skip(crel, err) {
				continue
			}
			return fail(fmt.Errorf("repo: lstat %s: %w", cabs, err))
		}
		var pn *manifest.Node
		if parent != nil {
			pn = findNode(parent, name)
		}
		cc := b.checkCache(crel, &st, pn)
		n, ok, err := b.nodeOf(cabs, crel, name, &st, pn, cc)
		if err != nil {
			if b.skip(crel, err) {
				continue
			}
			return fail(err)
		}
		if !ok {
			continue
		}
		nodes = append(nodes, n)
		i := len(nodes) - 1
		switch n.Type {
		case manifest.TypeDir:
			var pt *manifest.Tree
			if pn != nil && pn.Type == manifest.TypeDir {
				if t, err := b.r.loadTree(ctx, pn.Subtree); err == nil {
					pt = t
				} else {
					b.r.opts.Logf("parent tree of %s unreadable, reading everything: %v", crel, err)
				}
			}
			subs = append(subs, sub{i, b.listDir(ctx, cabs, crel, pt)})
		case manifest.TypeFile:
			b.files.Add(1)
			b.bytes.Add(uint64(st.Size))
			if b.opts.Progress != nil {
				b.opts.Progress.TotalFiles.Add(1)
				b.opts.Progress.TotalBytes.Add(st.Size)
			}
			if b.reuse(&nodes[i], pn, cc) {
				b.rememberReused(crel, &st, &nodes[i], cc)
				b.filesReused.Add(1)
				b.progress(st.Size)
				continue
			}
			// nodes has the capacity of ents and never reallocates, so the
			// pointer stays valid while the worker fills the node in.
			pending.Add(1)
			job := &fileJob{abs: cabs, rel: crel, st: &st, node: &nodes[i], done: func(err error) {
				if err != nil {
					setErr(err)
				}
				pending.Done()
			}}
			select {
			case b.jobs <- job:
			case <-ctx.Done():
				pending.Done()
				return fail(ctx.Err())
			}
		}
	}
	b.dirWG.Add(1)
	go func() {
		defer b.dirWG.Done()
		defer close(f.done)
		pending.Wait()
		for _, s := range subs {
			id, err := (<-s.fc).wait(ctx)
			if err != nil {
				setErr(err)
				continue
			}
			nodes[s.i].Subtree = id
		}
		if firstErr != nil {
			f.err = firstErr
			return
		}
		// Files skipped while being read (SkipUnreadable) are dropped.
		kept := nodes[:0]
		for _, n := range nodes {
			if n.Type != 0 {
				kept = append(kept, n)
			}
		}
		f.id, f.err = b.saveTree(ctx, &manifest.Tree{Nodes: kept})
	}()
	return f
}
