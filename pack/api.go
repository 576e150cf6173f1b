package pack

// API SKELETON written by the lead: the exported names, types and
// signatures below are the contract that repo/ codes against. Fill in the
// bodies (and move them into files of your choosing); keep the signatures.

import (
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// Version is the pack and index format version (first byte of a trailer
// and of an index delta).
const Version = 1

// Sentinel errors.
var (
	ErrCorrupt  = errors.New("pack: corrupt") // bad trailer, bad bounds, hash mismatch
	ErrVersion  = errors.New("pack: unsupported version")
	ErrFinished = errors.New("pack: writer already finished or aborted")
)

// BlobType says what a blob holds. Data and tree blobs go to separate packs.
type BlobType uint8

const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

// Frame is one compressed (or raw) run of bytes inside a pack that holds one
// or more blobs.
type Frame struct {
	Offset     uint32 // of the stored frame within the pack
	Length     uint32 // stored bytes
	RawLength  uint32 // bytes after decompression (== Length when !Compressed)
	Compressed bool   // zstd; false means stored raw
}

// End is the pack offset just past the frame.
func (f Frame) End() uint32 { return f.Offset + f.Length }

// Entry locates one blob: its pack, its frame and its place in the frame.
type Entry struct {
	ID     chunk.ID
	Type   BlobType
	Pack   chunk.ID // the pack's ID (BLAKE3 of all its bytes)
	Frame  Frame
	Offset uint32 // of the blob within the decompressed frame
	Length uint32 // plain length of the blob
}

// Options tune a Writer.
type Options struct {
	// FrameSize: small blobs are compressed together until a frame holds
	// about this many plain bytes (default 128 KiB).
	FrameSize int
	// LargeBlob: a blob at least this long gets a frame of its own
	// (default FrameSize/2).
	LargeBlob int
}

// Writer builds one pack in memory. Lifecycle: NewWriter, Add..., then
// exactly one of Finish or Abort. After an error every later call returns
// the same error (sticky). Not safe for concurrent use.
type Writer struct{}

// Packed is a finished pack: its bytes, its ID and the index entries of its
// blobs (Entry.Pack set).
type Packed struct {
	ID      chunk.ID
	Data    []byte
	Entries []Entry
}

// NewWriter returns a Writer compressing with enc (shared, used only via
// EncodeAll, which is safe for concurrent use).
func NewWriter(enc *zstd.Encoder, opts Options) *Writer { panic("unimplemented") }

// Add appends a blob; data is copied. id must be chunk.Hash(data) (the writer
// does not re-hash). Adding the same id twice to one pack is allowed but
// wasteful; the caller deduplicates.
func (w *Writer) Add(id chunk.ID, t BlobType, data []byte) error { panic("unimplemented") }

// Size returns an estimate of the finished pack's size in bytes (stored
// frames so far plus the plain bytes of the open frame), for the caller's
// target-size decision.
func (w *Writer) Size() int { panic("unimplemented") }

// Count returns the number of blobs added.
func (w *Writer) Count() int { panic("unimplemented") }

// Finish closes the open frame, appends the trailer and returns the pack.
func (w *Writer) Finish() (Packed, error) { panic("unimplemented") }

// Abort discards the pack and releases its buffers.
func (w *Writer) Abort() { panic("unimplemented") }

// ParseTrailer reads the trailer of a pack of the given size through r (it reads the fixed footer from the end first, then the trailer)
// and returns its entries with Pack set to pack. Bounds are checked:
// frames within the pack, blobs within frames, sizes capped, so arbitrary
// bytes never panic or allocate without bound.
func ParseTrailer(pack chunk.ID, r io.ReaderAt, size int64) ([]Entry, error) {
	panic("unimplemented")
}

// DecodeFrame turns a frame's stored bytes into its plain bytes, appending
// to dst. dec is shared and used via DecodeAll. The result must be exactly
// f.RawLength bytes long (ErrCorrupt otherwise).
func DecodeFrame(dec *zstd.Decoder, f Frame, stored []byte, dst []byte) ([]byte, error) {
	panic("unimplemented")
}

// Blob returns e's bytes out of its decoded frame and checks them against
// e.ID (ErrCorrupt naming the blob and the pack on mismatch).
func Blob(frame []byte, e Entry) ([]byte, error) { panic("unimplemented") }

// EncodeIndex encodes an index delta (the entries of the packs that one
// backup wrote), deterministically: sorted by pack, then frame offset, then
// blob offset.
func EncodeIndex(entries []Entry) ([]byte, error) { panic("unimplemented") }

// DecodeIndex decodes an index delta, checking its version and bounds.
func DecodeIndex(data []byte) ([]Entry, error) { panic("unimplemented") }
