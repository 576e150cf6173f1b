package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
)

// worker reads, chunks, hashes and compresses files. Each worker fills a
// data pack of its own, so both cores compress at once and the files of
// one directory tend to share a pack and a frame.
func (b *backup) worker(ctx context.Context) error {
	w := &fileWorker{b: b, ch: chunk.NewChunker(b.r.cfg.Chunker), pw: b.r.newPackWriter(b.r.cfg.DataPackSize),
		zeroIDs: make(map[int]chunk.ID)}
	defer func() {
		if w.pw != nil {
			w.pw.Abort()
		}
	}()
	for job := range b.jobs {
		err := ctx.Err()
		switch {
		case err == nil && job.group != nil:
			err = w.saveLinked(ctx, job)
		case err == nil:
			err = w.saveFile(ctx, job)
		default:
			b.pool.release(job.dir) // never opened
		}
		// Only what could not be read is skipped: a failing pack or store
		// fails the backup.
		if errors.Is(err, ErrUnreadable) && b.skip(job.rel, err) {
			job.node.Type = 0 // dropped from the tree
			b.files.Add(^uint64(0))
			b.bytes.Add(^uint64(job.st.Size - 1))
			err = nil
		}
		job.done(err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return w.flush(ctx, 0)
}

type fileWorker struct {
	b  *backup
	ch *chunk.Chunker
	pw *pack.Writer
	// zeroIDs memoizes the ID of the all-zero chunk of each length: the
	// holes of a sparse file cut into many equal chunks (chunkID).
	zeroIDs map[int]chunk.ID
}

// saveFile reads one file's content and xattrs into job.node. The node
// keeps the metadata seen by the walk; if the file changed while it was
// read, the snapshot holds what was read and Stats.Changed names the
// file, so the next backup (whose stat will differ) reads it again.
func (w *fileWorker) saveFile(ctx context.Context, job *fileJob) error {
	b := w.b
	abs := b.abs(job.rel)
	fd, err := b.openFile(job)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreadable, abs, err)
	}
	defer unix.Close(fd)
	var before unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreadable, abs, err)
	}
	if before.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s: no longer a regular file", ErrUnreadable, abs)
	}
	xs, err := storedXattrs(fdXattrs(fd))
	if err != nil {
		return fmt.Errorf("%w: %s: xattrs: %w", ErrUnreadable, abs, err)
	}
	job.node.Xattrs = xs
	var rd io.Reader = newFileReader(fd, &before)
	if b.r.readHook != nil {
		rd = b.r.readHook(abs, rd)
	}
	content, size, err := w.chunkAll(ctx, abs, rd)
	if err != nil {
		return err
	}
	job.node.Content = content
	job.node.Size = size
	// The snapshot declares what its trees hold (a restore refuses more):
	// a file that grew or shrank while read counts as read. Adding the
	// difference modulo 2^64 subtracts when it shrank.
	b.bytes.Add(size - uint64(job.st.Size))
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err != nil || size != uint64(job.st.Size) ||
		after.Mtim != job.st.Mtim || after.Ctim != job.st.Ctim || after.Size != job.st.Size || after.Ino != job.st.Ino {
		b.mu.Lock()
		b.changed = append(b.changed, job.rel)
		b.mu.Unlock()
	} else {
		job.stable = true
		b.remember(job.rel, job.st, job.node)
	}
	b.filesRead.Add(1)
	b.bytesRead.Add(size)
	b.progress(int64(size))
	return nil
}

// openFile opens the job's file in its directory's descriptor, and ends
// the job's reference to it. O_NOFOLLOW: an entry swapped for a symlink
// since the walk is not followed out of the tree; O_NONBLOCK: one swapped
// for a FIFO does not block the worker.
func (b *backup) openFile(job *fileJob) (int, error) {
	dirfd, err := b.pool.pin(job.dir)
	if err != nil {
		b.pool.release(job.dir)
		return -1, err
	}
	defer b.pool.done(job.dir)
	return unix.Openat(dirfd, job.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
}

// chunkAll cuts rd, the content of the file abs, into chunks and adds the
// new ones to the worker's pack; it returns the content's chunk IDs and
// its size. Read errors are ErrUnreadable.
func (w *fileWorker) chunkAll(ctx context.Context, abs string, rd io.Reader) ([]chunk.ID, uint64, error) {
	w.ch.Reset(rd)
	var size uint64
	content := make([]chunk.ID, 0, 1)
	for {
		c, err := w.ch.Next()
		if err == io.EOF {
			return content, size, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnreadable, abs, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		id := w.chunkID(c.Data)
		content = append(content, id)
		size += uint64(len(c.Data))
		if w.b.markNew(id) {
			if err := w.add(ctx, id, pack.DataBlob, c.Data); err != nil {
				return nil, 0, err
			}
		}
	}
}

// add puts a new blob into the worker's pack and ships the pack when it
// reaches the target size.
func (w *fileWorker) add(ctx context.Context, id chunk.ID, t pack.BlobType, data []byte) error {
	if err := w.pw.Add(id, t, data); err != nil {
		return fmt.Errorf("repo: pack blob %s: %w", id.Str(), err)
	}
	w.b.blobsNew.Add(1)
	w.b.bytesNew.Add(uint64(len(data)))
	return w.flush(ctx, w.b.r.cfg.DataPackSize)
}

// flush ships the worker's pack if it holds at least min bytes (and any
// blob at all).
func (w *fileWorker) flush(ctx context.Context, min int) error {
	if w.pw.Count() == 0 || w.pw.Size() < min {
		return nil
	}
	p, err := w.pw.Finish()
	w.pw = w.b.r.newPackWriter(w.b.r.cfg.DataPackSize)
	if err != nil {
		return fmt.Errorf("repo: finish pack: %w", err)
	}
	return w.b.ship(ctx, p)
}

// markNew reports whether blob id is neither in the repository (outside
// packs gc condemned) nor already added by this backup, and marks it
// added. A blob found in the repository is noted as reused, for the check
// against gc before the commit.
func (b *backup) markNew(id chunk.ID) bool {
	inRepo := b.r.idx.has(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	if inRepo {
		b.reused[id] = struct{}{}
		return false
	}
	if _, ok := b.added[id]; ok {
		return false
	}
	b.added[id] = struct{}{}
	return true
}

func (b *backup) ship(ctx context.Context, p pack.Packed) error {
	select {
	case b.uploads <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// uploader stores finished packs. Their entries are kept by the backup
// and reach the shared index only after the index delta is written, so no
// other backup can commit a reference to a pack that might never be
// indexed.
func (b *backup) uploader(ctx context.Context) error {
	for p := range b.uploads {
		// Never re-create a pack gc has condemned (gc_writer.go).
		q, err := b.r.uniquePack(p)
		if err == nil {
			p = q
			err = b.r.st.Save(ctx, packName(p.ID), p.Data, store.SaveOptions{})
		}
		if err != nil {
			// Drain so that senders do not block forever.
			go func() {
				for range b.uploads {
				}
			}()
			return fmt.Errorf("repo: upload pack %s: %w", packName(p.ID), err)
		}
		b.packs.Add(1)
		b.uploaded.Add(uint64(len(p.Data)))
		b.mu.Lock()
		b.entries = append(b.entries, p.Entries...)
		b.mu.Unlock()
		b.r.recyclePack(p.Data) // the store keeps no reference to it
	}
	return nil
}

// saveTree encodes a directory's tree and adds it to the tree pack unless
// the repository already has it.
func (b *backup) saveTree(ctx context.Context, t *manifest.Tree) (chunk.ID, error) {
	data, err := t.Encode()
	if err != nil {
		return chunk.ID{}, fmt.Errorf("repo: encode tree: %w", err)
	}
	id := chunk.Hash(data)
	if !b.markNew(id) {
		return id, nil
	}
	b.treeMu.Lock()
	defer b.treeMu.Unlock()
	if err := b.treeW.Add(id, pack.TreeBlob, data); err != nil {
		return id, fmt.Errorf("repo: pack tree %s: %w", id.Str(), err)
	}
	b.blobsNew.Add(1)
	b.bytesNew.Add(uint64(len(data)))
	if b.treeW.Size() < b.r.cfg.TreePackSize {
		return id, nil
	}
	return id, b.shipTrees(ctx)
}

// shipTrees ships the tree pack; b.treeMu is held.
func (b *backup) shipTrees(ctx context.Context) error {
	p, err := b.treeW.Finish()
	b.treeW = b.r.newPackWriter(b.r.cfg.TreePackSize)
	if err != nil {
		return fmt.Errorf("repo: finish tree pack: %w", err)
	}
	return b.ship(ctx, p)
}

func (b *backup) flushTrees(ctx context.Context) error {
	b.treeMu.Lock()
	defer b.treeMu.Unlock()
	if b.treeW.Count() == 0 {
		b.treeW.Abort()
		return nil
	}
	return b.shipTrees(ctx)
}

// commit writes the index delta and then the snapshot object: the step
// that makes the backup exist.
func (b *backup) commit(ctx context.Context, root chunk.ID, start, now time.Time) (Handle, error) {
	if err := ctx.Err(); err != nil {
		return Handle{}, err
	}
	if len(b.entries) > 0 {
		data, err := pack.EncodeIndex(b.entries)
		if err != nil {
			return Handle{}, fmt.Errorf("repo: encode index: %w", err)
		}
		name := indexPrefix + chunk.Hash(data).String()
		if err := b.r.st.Save(ctx, name, data, store.SaveOptions{}); err != nil {
			return Handle{}, fmt.Errorf("repo: write index %s: %w", name, err)
		}
		b.uploaded.Add(uint64(len(data)))
		b.r.idx.add(name, b.entries)
	}
	// now is the store's time (lease.check), as gc and restore judge
	// expiry by the store's clock.
	snap := &manifest.Snapshot{
		Version: manifest.Version,
		Tree:    root,
		Name:    b.opts.Name,
		Dir:     b.root,
		Host:    b.r.opts.Host,
		Writer:  b.writer,
		Created: now,
		Summary: manifest.Summary{
			Files: b.files.Load(), Dirs: b.dirs.Load(), Symlinks: b.symlinks.Load(), Other: b.other.Load(),
			Bytes: b.bytes.Load(), BlobsNew: b.blobsNew.Load(), BytesNew: b.bytesNew.Load(),
			Skipped: uint64(len(b.skipped)),
		},
	}
	if !b.opts.Parent.IsZero() {
		p := b.opts.Parent
		snap.Parent = &p
	}
	if b.opts.TTL > 0 {
		exp := now.Add(b.opts.TTL)
		snap.Expires = &exp
	}
	data, err := snap.Encode()
	if err != nil {
		return Handle{}, fmt.Errorf("repo: encode snapshot: %w", err)
	}
	id := chunk.Hash(data)
	name := snapshotPrefix + id.String()
	if err := b.r.st.Save(ctx, name, data, store.SaveOptions{IfNoneMatch: true}); err != nil && !errors.Is(err, store.ErrExists) {
		return Handle{}, fmt.Errorf("repo: write snapshot %s: %w", name, err)
	}
	b.uploaded.Add(uint64(len(data)))
	if b.fcNew != nil {
		b.fcNew.Snapshot = id
		b.r.saveFilesCache(b.root, b.fcNew)
	}
	h := handleOf(id, snap)
	h.Stats.FilesRead = b.filesRead.Load()
	h.Stats.BytesRead = b.bytesRead.Load()
	h.Stats.FilesReused = b.filesReused.Load()
	h.Stats.PacksUploaded = b.packs.Load()
	h.Stats.BytesUploaded = b.uploaded.Load()
	h.Stats.Skipped = b.skipped
	h.Stats.Changed = b.changed
	h.Stats.Seconds = time.Since(start).Seconds()
	return h, nil
}
