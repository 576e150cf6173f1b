package repo

import (
	"bytes"
	"io"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
)

// fileReader reads a regular file through its descriptor with pread. A
// file with holes (fewer bytes allocated than its size) is read extent by
// extent: the filesystem says where data lies (lseek SEEK_DATA and
// SEEK_HOLE), and holes are served as zeros from memory instead of read(2)
// calls that would make the kernel produce them, which for a 4 GiB file
// holding 5 MB was most of a 15 s backup. The bytes are exactly those read
// would return, so chunk boundaries and IDs, and with them deduplication,
// do not change. A filesystem without SEEK_DATA (EINVAL, EOPNOTSUPP) is
// read in full.
type fileReader struct {
	fd     int
	off    int64
	size   int64 // the size when opened: holes are looked for below it only
	sparse bool  // read extent by extent
	// [off, data) is a hole and [data, end) data, for off < end.
	data, end int64
}

// newFileReader reads the file open as fd, whose fstat is st. Dense files
// (the common case) cost no lseek.
func newFileReader(fd int, st *unix.Stat_t) *fileReader {
	return &fileReader{fd: fd, size: st.Size, sparse: st.Blocks*512 < st.Size}
}

func (r *fileReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.sparse && r.off < r.size {
		if r.off >= r.end {
			r.nextExtent()
		}
		if r.off < r.data {
			n := int(min(int64(len(p)), r.data-r.off))
			clear(p[:n])
			r.off += int64(n)
			return n, nil
		}
		if r.sparse { // nextExtent may have given up
			p = p[:min(int64(len(p)), r.end-r.off)]
		}
	}
	// Past the size seen at open: a file that grew is read to its end,
	// as without holes.
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		r.off += int64(n)
		return n, nil
	}
}

// nextExtent finds the hole and the data extent from r.off on. Where there
// is no more data below the size, the rest up to it is a hole.
func (r *fileReader) nextExtent() {
	data, err := unix.Seek(r.fd, r.off, unix.SEEK_DATA)
	if err == unix.ENXIO { // only a hole up to the end
		r.data, r.end = r.size, r.size
		return
	}
	if err != nil {
		r.sparse = false // no SEEK_DATA here: read everything
		return
	}
	if data >= r.size { // data only past the size seen at open
		r.data, r.end = r.size, r.size
		return
	}
	hole, err := unix.Seek(r.fd, data, unix.SEEK_HOLE)
	if err != nil || hole <= data {
		r.sparse = false
		return
	}
	r.data, r.end = data, hole
}

// chunkID returns the ID of a chunk. The all-zero chunks that holes and
// zeroed regions cut into (the chunker cuts a long zero run into chunks
// of its minimum size) are recognised without hashing them again: the ID
// of each length is hashed once per worker. An all-zero chunk is compared
// with itself shifted by one byte, a memcmp that stops at the first
// difference, so ordinary data costs next to nothing.
func (w *fileWorker) chunkID(data []byte) chunk.ID {
	if len(data) == 0 || data[0] != 0 || !bytes.Equal(data[1:], data[:len(data)-1]) {
		return chunk.Hash(data)
	}
	id, ok := w.zeroIDs[len(data)]
	if !ok {
		id = chunk.Hash(data)
		w.zeroIDs[len(data)] = id
	}
	return id
}
