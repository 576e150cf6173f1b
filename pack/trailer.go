package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/sandsnap/sandsnap/chunk"
)

// The footer closes every pack, whatever its version: trailer length
// (uint32 LE), CRC-32C of the trailer (uint32 LE), magic. It has a fixed
// size so that a reader needs one range read for it and one for the
// trailer.
const (
	footerSize = 12
	magic      = "SSPK"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameRecordMin is the smallest encoding of a frame record (flags and a
// one-byte length).
const frameRecordMin = 2

// appendTrailer appends the trailer and the footer for frames and the blobs
// in entries (entries[i] in frames[frameOf[i]]). Frames are contiguous from
// offset 0, so only their lengths are written.
func appendTrailer(b []byte, frames []Frame, entries []Entry, frameOf []int) []byte {
	start := len(b)
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(len(frames)))
	for _, f := range frames {
		b = appendFrame(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i, e := range entries {
		b = appendBlob(b, e, frameOf[i])
	}
	return appendFooter(b, b[start:])
}

// appendFooter appends the footer for trailer.
func appendFooter(b, trailer []byte) []byte {
	crc := crc32.Checksum(trailer, castagnoli)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(trailer)))
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, magic...)
}

// ParseTrailer reads the trailer of a pack of the given size through r (it
// reads the fixed footer from the end first, then the trailer) and returns
// its entries, in trailer order, with Pack set to pack. Bounds are checked:
// frames tile the data region exactly, every frame holds a blob, blobs lie
// within their frames, sizes are capped and counts are bounded by the
// trailer's length, so arbitrary bytes never panic or allocate more than a
// few times the trailer's size. It does not verify the pack's ID (that
// needs all its bytes) nor the blobs' hashes (Blob does). Format errors
// wrap ErrCorrupt or ErrVersion; errors from r are returned wrapped; all
// name the pack.
func ParseTrailer(pack chunk.ID, r io.ReaderAt, size int64) ([]Entry, error) {
	entries, err := parseTrailer(pack, r, size)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", pack.Str(), err)
	}
	return entries, nil
}

func parseTrailer(pack chunk.ID, r io.ReaderAt, size int64) ([]Entry, error) {
	if size < footerSize+1 {
		return nil, fmt.Errorf("%w: size %d too small for a pack", ErrCorrupt, size)
	}
	var footer [footerSize]byte
	if err := readAt(r, footer[:], size-footerSize); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	if string(footer[8:]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrCorrupt, footer[8:])
	}
	tlen := int64(binary.LittleEndian.Uint32(footer[0:4]))
	if tlen < 1 || tlen > min(size-footerSize, MaxTrailerSize) {
		return nil, fmt.Errorf("%w: trailer length %d in a pack of %d bytes", ErrCorrupt, tlen, size)
	}
	dataLen := size - footerSize - tlen
	if dataLen > math.MaxUint32 {
		return nil, fmt.Errorf("%w: data region of %d bytes exceeds 4 GiB", ErrCorrupt, dataLen)
	}
	trailer := make([]byte, tlen)
	if err := readAt(r, trailer, dataLen); err != nil {
		return nil, fmt.Errorf("read trailer: %w", err)
	}
	if crc32.Checksum(trailer, castagnoli) != binary.LittleEndian.Uint32(footer[4:8]) {
		return nil, fmt.Errorf("%w: trailer checksum mismatch", ErrCorrupt)
	}
	if trailer[0] != Version {
		return nil, fmt.Errorf("%w: trailer version %d, want %d", ErrVersion, trailer[0], Version)
	}
	return decodeTrailer(pack, trailer[1:], uint32(dataLen))
}

// decodeTrailer decodes the frame and blob tables that follow the version
// byte. dataLen is the length of the data region that the frames must tile.
func decodeTrailer(pack chunk.ID, b []byte, dataLen uint32) ([]Entry, error) {
	rd := reader{b: b}
	nframes := rd.count("frame count", frameRecordMin)
	if rd.err != nil {
		return nil, rd.err
	}
	frames := make([]Frame, nframes)
	used := make([]bool, len(frames))
	var off uint32
	for i := range frames {
		frames[i] = rd.frame(off)
		if rd.err != nil {
			return nil, rd.err
		}
		if uint64(off)+uint64(frames[i].Length) > uint64(dataLen) {
			return nil, fmt.Errorf("%w: frame %d at %d+%d beyond the data region (%d bytes)", ErrCorrupt, i, off, frames[i].Length, dataLen)
		}
		off += frames[i].Length
	}
	if off != dataLen {
		return nil, fmt.Errorf("%w: frames cover %d of %d data bytes", ErrCorrupt, off, dataLen)
	}
	entries := make([]Entry, rd.count("blob count", blobRecordMin))
	for i := range entries {
		e, fi := rd.blob(len(frames))
		if rd.err != nil {
			return nil, rd.err
		}
		e.Pack, e.Frame = pack, frames[fi]
		if err := checkBlob(e); err != nil {
			return nil, err
		}
		used[fi] = true
		entries[i] = e
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if len(rd.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the blob table", ErrCorrupt, len(rd.b))
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("%w: frame %d holds no blob", ErrCorrupt, i)
		}
	}
	return entries, nil
}

// readAt fills p from r at off. A pack shorter than its stated size is
// corrupt (truncated); other read errors are passed on.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil // io.ReaderAt may return io.EOF with a full read
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: truncated: %d of %d bytes at %d: %w", ErrCorrupt, n, len(p), off, io.ErrUnexpectedEOF)
	}
	return err
}

// Blob returns e's bytes out of its decoded frame and checks them against
// e.ID (ErrCorrupt naming the blob and the pack on mismatch). The result
// aliases frame.
func Blob(frame []byte, e Entry) ([]byte, error) {
	end := uint64(e.Offset) + uint64(e.Length)
	if end > uint64(len(frame)) {
		return nil, fmt.Errorf("%w: blob %s in pack %s: %d+%d outside a frame of %d bytes",
			ErrCorrupt, e.ID.Str(), e.Pack.Str(), e.Offset, e.Length, len(frame))
	}
	data := frame[e.Offset:end]
	if chunk.Hash(data) != e.ID {
		return nil, fmt.Errorf("%w: blob %s in pack %s: hash mismatch", ErrCorrupt, e.ID.Str(), e.Pack.Str())
	}
	return data, nil
}
