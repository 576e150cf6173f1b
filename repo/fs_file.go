package repo

import (
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sandsnap/sandsnap/manifest"
)

// openFile opens regular file e: it finds each chunk in the index and
// checks that their lengths add up to the file's size, so that a read
// maps an offset to a chunk by binary search and a bad snapshot fails here
// rather than in the middle of a read.
func (f *SnapshotFS) openFile(e fsEntry) (*file, error) {
	n := e.node
	offs := make([]int64, len(n.Content)+1)
	for i, id := range n.Content {
		b, err := f.blobs.locate(id)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: e.name, Err: err}
		}
		offs[i+1] = offs[i] + int64(b.Length)
	}
	if uint64(offs[len(n.Content)]) != n.Size {
		return nil, &fs.PathError{Op: "open", Path: e.name,
			Err: fmt.Errorf("%w: chunks hold %d bytes, size is %d", manifest.ErrInvalid, offs[len(n.Content)], n.Size)}
	}
	return &file{ent: e, fsys: f, offs: offs}, nil
}

// file is an open regular file.
//
// ReadAt may be called from many goroutines at once, also while Read or
// Seek run; each call maps its range to the file's chunks and takes their
// frames from the FS's frame cache or fetches them. Read and Seek share
// one offset, guarded by a mutex, as os.File's do.
type file struct {
	ent  fsEntry
	fsys *SnapshotFS
	offs []int64 // offs[i] is where chunk i starts; the last is the size

	mu     sync.Mutex // guards pos, and orders Read and Seek
	pos    int64
	closed atomic.Bool
	// last is the chunk read last, so that small reads within one chunk
	// (a reader that asks for a few bytes at a time) cost a copy each,
	// not an index lookup and a cache lookup. It holds on to that chunk's
	// frame (at most the chunker's MaxSize) until another chunk is read
	// or the file is closed, also when the FS's frame cache drops it.
	last atomic.Pointer[chunkView]
}

// chunkView is chunk i of a file, checked, aliasing its cached frame.
type chunkView struct {
	i    int
	data []byte
}

var (
	_ io.ReaderAt = (*file)(nil)
	_ io.Seeker   = (*file)(nil)
)

func (fl *file) size() int64 { return fl.offs[len(fl.offs)-1] }

func (fl *file) Stat() (fs.FileInfo, error) { return fl.ent.info(), nil }

// Close marks the file closed; a second Close fails with fs.ErrClosed.
func (fl *file) Close() error {
	if fl.closed.Swap(true) {
		return &fs.PathError{Op: "close", Path: fl.ent.name, Err: fs.ErrClosed}
	}
	fl.last.Store(nil)
	return nil
}

// ReadAt reads len(p) bytes from off, as io.ReaderAt says: fewer only at
// the end of the file (with io.EOF) or on an error, which names the file
// and, for a missing or corrupt blob, the pack.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case fl.closed.Load() || fl.fsys.closed.Load():
		return 0, &fs.PathError{Op: "read", Path: fl.ent.name, Err: fs.ErrClosed}
	case off < 0:
		return 0, &fs.PathError{Op: "read", Path: fl.ent.name, Err: fmt.Errorf("negative offset %d: %w", off, fs.ErrInvalid)}
	case off >= fl.size():
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), fl.size()-off)]
	n, err := fl.readChunks(want, off)
	if err != nil {
		return n, &fs.PathError{Op: "read", Path: fl.ent.name, Err: err}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readChunks fills p, which lies within the file, from off.
func (fl *file) readChunks(p []byte, off int64) (int, error) {
	i := sort.Search(len(fl.offs)-1, func(i int) bool { return fl.offs[i+1] > off })
	n := 0
	for ; n < len(p); i++ {
		data, err := fl.chunk(i)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data[off+int64(n)-fl.offs[i]:])
	}
	return n, nil
}

// chunk returns the bytes of chunk i, checked against its ID.
func (fl *file) chunk(i int) ([]byte, error) {
	if v := fl.last.Load(); v != nil && v.i == i {
		return v.data, nil
	}
	id := fl.ent.node.Content[i]
	e, err := fl.fsys.blobs.locate(id)
	if err != nil {
		return nil, err
	}
	data, err := fl.fsys.blobs.blob(fl.fsys.ctx, e)
	if err != nil {
		return nil, fmt.Errorf("chunk %d at offset %d: %w", i, fl.offs[i], err)
	}
	if int64(len(data)) != fl.offs[i+1]-fl.offs[i] {
		// The index changed under the open file (a reload): a checked
		// blob has one length, so this is not data to trust.
		return nil, fmt.Errorf("chunk %s changed length: %w", id.Str(), manifest.ErrInvalid)
	}
	fl.last.Store(&chunkView{i: i, data: data})
	return data, nil
}

// Read reads from the file's offset and advances it.
func (fl *file) Read(p []byte) (int, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	n, err := fl.ReadAt(p, fl.pos)
	fl.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil // the next Read reports the end
	}
	return n, err
}

// Seek sets the offset for the next Read, as io.Seeker says; an offset
// past the end is allowed (Read then returns io.EOF).
func (fl *file) Seek(offset int64, whence int) (int64, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed.Load() {
		return 0, &fs.PathError{Op: "seek", Path: fl.ent.name, Err: fs.ErrClosed}
	}
	pos := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		pos += fl.pos
	case io.SeekEnd:
		pos += fl.size()
	default:
		return 0, &fs.PathError{Op: "seek", Path: fl.ent.name, Err: fmt.Errorf("whence %d: %w", whence, fs.ErrInvalid)}
	}
	if pos < 0 {
		return 0, &fs.PathError{Op: "seek", Path: fl.ent.name, Err: fmt.Errorf("negative offset %d: %w", pos, fs.ErrInvalid)}
	}
	fl.pos = pos
	return pos, nil
}

// dirFile is an open directory: its tree and how far ReadDir has read.
type dirFile struct {
	ent  fsEntry
	fsys *SnapshotFS
	tree *manifest.Tree

	mu     sync.Mutex // guards pos
	pos    int
	closed atomic.Bool
}

var _ fs.ReadDirFile = (*dirFile)(nil)

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.ent.info(), nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.ent.name, Err: errIsDir}
}

// Close marks the directory closed; a second Close fails with fs.ErrClosed.
func (d *dirFile) Close() error {
	if d.closed.Swap(true) {
		return &fs.PathError{Op: "close", Path: d.ent.name, Err: fs.ErrClosed}
	}
	return nil
}

// ReadDir returns the next n entries (all the rest when n <= 0), as
// fs.ReadDirFile says.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() || d.fsys.closed.Load() {
		return nil, &fs.PathError{Op: "readdir", Path: d.ent.name, Err: fs.ErrClosed}
	}
	rest := d.tree.Nodes[d.pos:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.pos += len(rest)
	return dirEntries(rest), nil
}

// otherFile is an open symlink or named pipe: it has metadata only.
type otherFile struct {
	ent    fsEntry
	closed atomic.Bool
}

func (o *otherFile) Stat() (fs.FileInfo, error) { return o.ent.info(), nil }

// Read reports the end at once for a named pipe, which holds no data in
// a snapshot, and fails for a symlink, which is never followed.
func (o *otherFile) Read([]byte) (int, error) {
	if o.closed.Load() {
		return 0, &fs.PathError{Op: "read", Path: o.ent.name, Err: fs.ErrClosed}
	}
	if o.ent.node.Type == manifest.TypeSymlink {
		return 0, &fs.PathError{Op: "read", Path: o.ent.name, Err: errIsSymlink}
	}
	return 0, io.EOF
}

// Close marks the file closed; a second Close fails with fs.ErrClosed.
func (o *otherFile) Close() error {
	if o.closed.Swap(true) {
		return &fs.PathError{Op: "close", Path: o.ent.name, Err: fs.ErrClosed}
	}
	return nil
}

// Reasons a Read fails on what is not a regular file.
var (
	errIsDir     = fmt.Errorf("is a directory: %w", fs.ErrInvalid)
	errIsSymlink = fmt.Errorf("is a symbolic link, which this file system does not follow (use ReadLink): %w", fs.ErrInvalid)
)
