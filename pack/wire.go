package pack

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sandsnap/sandsnap/chunk"
)

// reader consumes a trailer or an index delta. Its error is sticky, so a
// parser can read a whole record and check once; every error wraps
// ErrCorrupt.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) id() chunk.ID {
	var id chunk.ID
	if r.err != nil {
		return id
	}
	if len(r.b) < chunk.IDSize {
		r.fail("truncated ID")
		return id
	}
	copy(id[:], r.b)
	r.b = r.b[chunk.IDSize:]
	return id
}

// uvarint reads a minimally encoded uvarint no larger than limit. Refusing
// non-minimal encodings keeps the byte form of a value unique, so decoding
// and re-encoding gives back the same bytes.
func (r *reader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("bad %s", what)
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.fail("non-minimal %s", what)
		return 0
	case v > limit:
		r.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of records, each at least minSize bytes, and refuses
// counts the remaining bytes cannot hold: this is what keeps allocations a
// small multiple of the input.
func (r *reader) count(what string, minSize int) int {
	return int(r.uvarint(what, uint64(len(r.b)/minSize)))
}

// Frame flags (one byte in trailers and index deltas).
const (
	flagCompressed = 1 << 0
	flagMask       = flagCompressed
)

// appendFrame writes a frame's lengths and flags; its offset is implied by
// the context (see FORMAT.md).
func appendFrame(b []byte, f Frame) []byte {
	var flags byte
	if f.Compressed {
		flags |= flagCompressed
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(f.Length))
	if f.Compressed {
		b = binary.AppendUvarint(b, uint64(f.RawLength))
	}
	return b
}

// frame reads what appendFrame wrote and checks it with checkFrame.
func (r *reader) frame(offset uint32) Frame {
	flags := r.byte()
	if flags&^flagMask != 0 {
		r.fail("unknown frame flags %#x", flags)
	}
	f := Frame{Offset: offset, Compressed: flags&flagCompressed != 0}
	f.Length = uint32(r.uvarint("frame length", math.MaxUint32))
	f.RawLength = f.Length
	if f.Compressed {
		f.RawLength = uint32(r.uvarint("frame raw length", MaxBlobSize))
	}
	if r.err == nil {
		if err := checkFrame(f); err != nil {
			r.err = err
		}
	}
	return f
}

// checkFrame checks the invariants every frame has, wherever it is read
// from: its end fits in a uint32, its plain size is bounded, a raw frame is
// as long as its plain bytes, and a compressed frame is never longer than
// them (a writer stores such data raw).
func checkFrame(f Frame) error {
	switch {
	case uint64(f.Offset)+uint64(f.Length) > math.MaxUint32:
		return fmt.Errorf("%w: frame at %d: length %d overflows", ErrCorrupt, f.Offset, f.Length)
	case f.RawLength > MaxBlobSize:
		return fmt.Errorf("%w: frame at %d: raw length %d exceeds %d", ErrCorrupt, f.Offset, f.RawLength, MaxBlobSize)
	case !f.Compressed && f.Length != f.RawLength:
		return fmt.Errorf("%w: raw frame at %d: length %d != raw length %d", ErrCorrupt, f.Offset, f.Length, f.RawLength)
	case f.Compressed && (f.Length == 0 || f.Length > f.RawLength):
		return fmt.Errorf("%w: compressed frame at %d: length %d, raw length %d", ErrCorrupt, f.Offset, f.Length, f.RawLength)
	}
	return nil
}

// appendBlob writes one blob record: ID, type, frame number, offset and
// length within the frame.
func appendBlob(b []byte, e Entry, frame int) []byte {
	b = append(b, e.ID[:]...)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(frame))
	b = binary.AppendUvarint(b, uint64(e.Offset))
	return binary.AppendUvarint(b, uint64(e.Length))
}

// blobRecordMin is the smallest encoding of a blob record.
const blobRecordMin = chunk.IDSize + 4

// blob reads what appendBlob wrote: the entry (Frame and Pack left for the
// caller) and its frame number, checked against nframes.
func (r *reader) blob(nframes int) (Entry, int) {
	var e Entry
	e.ID = r.id()
	e.Type = BlobType(r.byte())
	if r.err == nil && !e.Type.valid() {
		r.fail("blob %s: unknown type %d", e.ID.Str(), e.Type)
	}
	frame := int(r.uvarint("blob frame", uint64(max(nframes-1, 0))))
	if r.err == nil && nframes == 0 {
		r.fail("blob %s: no frames", e.ID.Str())
	}
	e.Offset = uint32(r.uvarint("blob offset", MaxBlobSize))
	e.Length = uint32(r.uvarint("blob length", MaxBlobSize))
	return e, frame
}

// checkBlob checks that e lies inside its frame.
func checkBlob(e Entry) error {
	if uint64(e.Offset)+uint64(e.Length) > uint64(e.Frame.RawLength) {
		return fmt.Errorf("%w: blob %s at %d+%d outside frame at %d (raw length %d)",
			ErrCorrupt, e.ID.Str(), e.Offset, e.Length, e.Frame.Offset, e.Frame.RawLength)
	}
	return nil
}
