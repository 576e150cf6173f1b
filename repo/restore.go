package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// RestoreOptions control one restore.
type RestoreOptions struct {
	// Progress, if set, is updated with atomic adds as files are written
	// or found unchanged (Files, Bytes) and once the plan is known
	// (TotalFiles, TotalBytes).
	Progress *Progress
	// Delete allows making a non-empty directory that sandsnap never
	// restored into or backed up identical to the snapshot, removing
	// what the snapshot lacks. Without it such a target is refused
	// (ErrTargetRefused). The root and system directories are refused
	// whatever it says. Without a cache folder (Options.CacheDir) there
	// is no record of earlier restores, so every restore into a
	// non-empty directory needs it.
	Delete bool
	// DryRun plans the restore, applies the target policy and compares
	// the target read-only, without writing, creating or chmodding
	// anything; RestoreStats then says what a real run would do, with
	// the list in RestoreStats.Actions.
	DryRun bool
	// Untrusted restores content nobody vouches for: no setuid or setgid
	// bits, no device files, no xattrs outside user.*, every entry owned
	// by the restoring user, and Limits enforced (defaults when zero).
	Untrusted bool
	// Limits bound what the restore accepts, checked against what the
	// snapshot declares and expands to before anything is written.
	Limits Limits

	// policy is the system the target policy checks against; in-package
	// tests point it at a fake root.
	policy targetPolicy
}

// Limits bound a restore's work. Zero fields take the defaults for the
// mode: generous ones for a trusted restore, DefaultUntrustedLimits for
// an untrusted one.
type Limits struct {
	MaxFiles uint64 // entries of every type
	MaxBytes uint64 // sum of file sizes (every hard-link name counts)
	MaxDepth int    // directory nesting below the target
}

// RestoreStats describe one restore. Files, Dirs, Symlinks, Other and
// Bytes count the snapshot (every hard-link name counts as a file, and its
// size in Bytes). The rest count what the restore did.
type RestoreStats struct {
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Other    uint64 `json:"other"`
	Bytes    uint64 `json:"bytes"`

	// FilesWritten counts files whose content was written (new or
	// replaced), BytesWritten their bytes (holes included).
	FilesWritten uint64 `json:"files_written"`
	BytesWritten uint64 `json:"bytes_written"`
	// FilesUnchanged counts files already present with the right content
	// (and hard-link names already linked right): only their metadata was
	// set.
	FilesUnchanged uint64 `json:"files_unchanged"`
	// FilesChecked counts the existing files read to compare them with
	// the snapshot (those the files cache could not vouch for).
	FilesChecked uint64 `json:"files_checked"`
	// Removed counts the entries deleted from the target because the
	// snapshot lacks them or holds another type or symlink target there;
	// each entry inside a removed directory counts too.
	Removed uint64 `json:"removed"`
	// PacksFetched counts the range reads (GET requests) of the data
	// phase, BytesFetched the bytes they downloaded.
	PacksFetched uint64  `json:"packs_fetched"`
	BytesFetched uint64  `json:"bytes_fetched"`
	Seconds      float64 `json:"seconds"`

	// DryRun is set when nothing was changed: the counts above (and
	// PacksFetched, BytesFetched) say what a real run would do, and
	// Actions lists it.
	DryRun  bool     `json:"dry_run,omitempty"`
	Actions []Action `json:"actions,omitempty"`
}

// Restore makes dir identical to snapshot id and reports what it did.
//
// The target is checked first, before anything is read from the store or
// written (restore_target.go): the root, system directories and the
// user's home are refused, and so is a non-empty directory that sandsnap
// has no record of (no files cache for it on this host, no unfinished
// restore's marker) unless opts.Delete is set (ErrTargetRefused); a
// target that is not a directory is ErrNotDir. dir is resolved once, and
// nothing below it is ever followed through a symlink: every operation is
// relative to a directory descriptor opened without following links.
//
// The snapshot and every tree are then loaded and checked, so a snapshot
// that is expired (ErrExpired), names a path that could escape dir or
// holds the marker's reserved name (ErrUnsafePath) or lacks a blob
// (ErrBlobNotFound) is refused before anything is written. With
// opts.DryRun nothing is written at all: RestoreStats says what a real
// run would do (restore_dryrun.go).
//
// A missing or empty dir is restored into a staging sibling renamed into
// place at the end, so a failed or cancelled restore leaves it as it was
// (restore_stage.go). An existing dir is restored in place under an
// incomplete marker (restore_marker.go) that is removed only once the
// restore has finished: entries the snapshot lacks are removed, entries
// of the wrong type replaced, files whose size, mtime and chunk IDs match
// are kept, and changed files are written to a temporary name and renamed
// over the old one (or, after an unfinished run, rewritten in place). The
// root's own mode, owner and mtime are never the snapshot's.
//
// A corrupt, truncated or missing pack fails the restore with an error
// that names the pack and a file that needed it; nothing outside dir has
// been touched.
func (r *Repository) Restore(ctx context.Context, id chunk.ID, dir string, opts RestoreOptions) (RestoreStats, error) {
	start := time.Now()
	tgt, err := r.checkTarget(dir, opts)
	if err != nil {
		return RestoreStats{}, err
	}
	snap, release, err := r.restoreLease(ctx, id)
	if err != nil {
		return RestoreStats{}, err
	}
	defer release()
	x, err := r.planRestore(ctx, snap, tgt, opts)
	if err != nil {
		return x.stats(start), fmt.Errorf("repo: restore %s: %w", id.Str(), err)
	}
	if opts.DryRun {
		if err := x.dryRun(ctx, tgt); err != nil {
			return x.stats(start), fmt.Errorf("repo: dry run of %s to %s: %w", id.Str(), tgt, err)
		}
		return x.stats(start), nil
	}
	err = x.restoreTo(ctx, tgt, id)
	if errors.Is(err, errStagedRename) {
		// Restored in full beside a mount point that statx did not
		// reveal: the staging copy is gone; restore again, in place.
		r.opts.Logf("restore %s in place: %v", tgt, err)
		x.unprogress()
		if x, err = r.planRestore(ctx, snap, tgt, opts); err == nil {
			err = x.restoreInPlace(ctx, tgt, id)
		}
	}
	if err != nil {
		return x.stats(start), fmt.Errorf("repo: restore %s to %s: %w", id.Str(), tgt, err)
	}
	if x.fcNew != nil {
		x.fcNew.Snapshot = id
		r.saveFilesCache(tgt.abs, x.fcNew)
	}
	return x.stats(start), nil
}

// restoreLease loads snapshot id, takes a lease for restoring it and
// checks that it has not expired; the caller calls release when done.
func (r *Repository) restoreLease(ctx context.Context, id chunk.ID) (snap *manifest.Snapshot, release func(), err error) {
	snap, err = r.Snapshot(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// A lease keeps gc from deleting packs this restore reads (gc may
	// repack a live snapshot's blobs and delete the old packs); its write
	// also gives the store's time, by which expiry is judged. A store
	// that refuses the lease (a read-only token) still restores, with the
	// host's clock and without that protection.
	release = func() {}
	l, now, err := r.acquireLease(ctx, "restore")
	if err != nil {
		r.opts.Logf("restore without a lease: %v", err)
		now = r.opts.Now()
	} else {
		release = func() { l.release(ctx) }
		if _, err := r.refreshGCView(ctx); err != nil {
			release()
			return nil, nil, err
		}
	}
	if snap.Expires != nil && !now.Before(*snap.Expires) {
		release()
		return nil, nil, fmt.Errorf("%w: snapshot %s expired at %s", ErrExpired, id, snap.Expires.UTC().Format(time.RFC3339))
	}
	return snap, release, nil
}

// planRestore builds the restorer of snap into tgt, and its plan. It
// returns the restorer even on failure, for its stats.
func (r *Repository) planRestore(ctx context.Context, snap *manifest.Snapshot, tgt *restoreTarget, opts RestoreOptions) (*restorer, error) {
	x := newRestorer(r, opts)
	x.target = tgt.dir
	x.fcOld = r.loadFilesCache(tgt.abs)
	if r.opts.CacheDir != "" {
		x.fcNew = newFilesCache(fcSize(x.fcOld))
	}
	if err := x.plan(ctx, snap); err != nil {
		return x, err
	}
	if _, ok := x.dirs[0].tree.Find(markerName); ok {
		return x, fmt.Errorf("%w: %q is a name sandsnap reserves for its incomplete-restore marker", ErrUnsafePath, markerName)
	}
	return x, nil
}

// unprogress takes back what a finished run added to opts.Progress,
// before the restore runs again.
func (x *restorer) unprogress() {
	if p := x.opts.Progress; p != nil {
		p.Files.Add(-int64(x.nFiles))
		p.Bytes.Add(-int64(x.nBytes))
		p.TotalFiles.Add(-int64(x.nFiles))
		p.TotalBytes.Add(-int64(x.nBytes))
	}
}

// openTarget opens the resolved target directory path, creating it (and
// its parents) if missing, without following a symlink at its last
// element.
func openTarget(path string) (int, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return -1, fmt.Errorf("create %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR || err == unix.ELOOP {
		return -1, fmt.Errorf("%s: %w", path, ErrNotDir)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

// restorer is the state of one running restore.
type restorer struct {
	r       *Repository
	opts    RestoreOptions
	root    int    // descriptor of the target directory
	target  string // the target as the caller named it, for messages
	asRoot  bool   // owners can be set
	workers int    // goroutines for the filesystem passes

	// The plan, built before anything is written and read-only after,
	// except for the per-file state that rfile guards.
	dirs  []*rdir  // breadth first: parents before children, depth ascending
	files []*rfile // every regular-file name, in plan order
	// linkNames counts the names of each hard-linked inode (by LinkID).
	linkNames map[uint64]uint64

	chunkers sync.Pool // *chunk.Chunker, for the unchanged-file check
	bufs     sync.Pool // *[]byte, stored frames in flight

	// rewrite: the target holds an unfinished restore's marker, so it is
	// inconsistent anyway: changed files are removed and created again
	// instead of written beside the old version, so that a retry after
	// ENOSPC needs no room for two copies.
	rewrite bool
	// actions is what a dry run found to do.
	actions []Action

	// fcOld is the target's files cache from an earlier restore or backup
	// (files whose stat and content digest match are not read); fcNew
	// records what this restore leaves, for the next backup.
	fcOld, fcNew *filesCache

	noOpenat2 atomic.Bool // the kernel lacks openat2
	openFiles atomic.Int64

	nFiles, nDirs, nSymlinks, nOther, nBytes uint64 // the snapshot's counts

	filesWritten, bytesWritten, filesUnchanged, removed atomic.Uint64
	filesChecked                                        atomic.Uint64
	packsFetched, bytesFetched                          atomic.Uint64
}

func newRestorer(r *Repository, opts RestoreOptions) *restorer {
	x := &restorer{
		r: r, opts: opts, root: -1,
		asRoot:  os.Geteuid() == 0,
		workers: max(4, 2*r.opts.Workers),
	}
	x.chunkers.New = func() any { return chunk.NewChunker(r.cfg.Chunker) }
	return x
}

func (x *restorer) stats(start time.Time) RestoreStats {
	return RestoreStats{
		Files: x.nFiles, Dirs: x.nDirs, Symlinks: x.nSymlinks, Other: x.nOther, Bytes: x.nBytes,
		FilesWritten:   x.filesWritten.Load(),
		BytesWritten:   x.bytesWritten.Load(),
		FilesUnchanged: x.filesUnchanged.Load(),
		FilesChecked:   x.filesChecked.Load(),
		Removed:        x.removed.Load(),
		PacksFetched:   x.packsFetched.Load(),
		BytesFetched:   x.bytesFetched.Load(),
		Seconds:        time.Since(start).Seconds(),
		DryRun:         x.opts.DryRun,
		Actions:        x.actions,
	}
}

// run executes the plan in four passes: structure (top-down: remove,
// create, check unchanged files), data (fetch packs, write files), links
// (hard links to files that now exist) and metadata (bottom-up: renames,
// owners, xattrs, modes, mtimes, directories after their contents).
func (x *restorer) run(ctx context.Context) error {
	if err := x.structure(ctx); err != nil {
		return err
	}
	if err := x.data(ctx); err != nil {
		return err
	}
	if err := x.links(ctx); err != nil {
		return err
	}
	return x.metadata(ctx)
}

// progressFile reports one file done with n bytes.
func (x *restorer) progressFile(n int64) {
	if p := x.opts.Progress; p != nil {
		p.Files.Add(1)
		p.Bytes.Add(n)
	}
}

func (x *restorer) progressBytes(n int64) {
	if p := x.opts.Progress; p != nil {
		p.Bytes.Add(n)
	}
}

// structure walks the plan top-down, several directories at a time: each
// directory's descriptor is opened by its parent without following links
// and handed to a goroutine (or processed inline when the pool is busy).
func (x *restorer) structure(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(x.workers)
	fd, err := unix.Openat(x.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", x.target, err)
	}
	g.Go(func() error { return x.prepareDir(gctx, g, fd, x.dirs[0]) })
	return g.Wait()
}

// metadata sets every entry's metadata, deepest directories first, so
// that nothing written later disturbs a directory's mtime or needs write
// access to a directory that has just become read-only.
func (x *restorer) metadata(ctx context.Context) error {
	for end := len(x.dirs); end > 0; {
		depth := x.dirs[end-1].depth
		begin := end
		for begin > 0 && x.dirs[begin-1].depth == depth {
			begin--
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(x.workers)
		for _, d := range x.dirs[begin:end] {
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				return x.finishDir(d)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		end = begin
	}
	return nil
}

// cleanup, after a failed restore in place, removes its temporary files
// (the old versions they were to replace are still in place) and the
// files it created under their final names whose data it did not finish
// writing: a retry then needs no room for what this run left behind.
func (x *restorer) cleanup() {
	for _, f := range x.files {
		f.mu.Lock()
		if f.fd >= 0 {
			unix.Close(f.fd)
			f.fd = -1
		}
		name := f.tmp
		if name == "" && f.write && f.left > 0 {
			name = f.node.Name
		}
		f.mu.Unlock()
		if name == "" {
			continue
		}
		dfd, err := x.openBeneath(f.dir.rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			continue
		}
		unix.Unlinkat(dfd, name, 0)
		unix.Close(dfd)
	}
}
