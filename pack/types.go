package pack

import (
	"errors"

	"github.com/sandsnap/sandsnap/chunk"
)

// Version is the pack and index format version (first byte of a trailer
// and of an index delta). See FORMAT.md.
const Version = 1

// Limits that every reader enforces, so that arbitrary bytes can neither
// make it allocate without bound nor make offsets overflow.
const (
	// MaxBlobSize is the largest blob a Writer accepts and the largest
	// RawLength a frame may declare. The chunker's MaxSize is at most
	// 64 MiB (chunk.Params.Validate); trees are far smaller.
	MaxBlobSize = 64 << 20
	// MaxTrailerSize bounds the trailer that ParseTrailer reads into
	// memory. A 16 MiB pack of 64-byte blobs needs about 10 MiB.
	MaxTrailerSize = 64 << 20
	// DefaultFrameSize is the default Options.FrameSize.
	DefaultFrameSize = 128 << 10
)

// Sentinel errors.
var (
	ErrCorrupt  = errors.New("pack: corrupt") // bad trailer, bad bounds, hash mismatch
	ErrVersion  = errors.New("pack: unsupported version")
	ErrFinished = errors.New("pack: writer already finished or aborted")
)

// BlobType says what a blob holds. Data and tree blobs go to separate packs.
type BlobType uint8

// Blob types. Values are part of the format; 0 and everything above
// TreeBlob are invalid.
const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

func (t BlobType) valid() bool { return t == DataBlob || t == TreeBlob }

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

// Options tune a Writer. The zero value gives the defaults.
type Options struct {
	// FrameSize: small blobs are compressed together until a frame holds
	// about this many plain bytes (default 128 KiB, at most MaxBlobSize).
	FrameSize int
	// LargeBlob: a blob at least this long gets a frame of its own
	// (default FrameSize/2, at most FrameSize).
	LargeBlob int
	// SizeHint is the largest pack the caller expects to finish (its
	// target size plus one large blob). The pack buffer is allocated at
	// this capacity on first use, so it is never copied to grow; 0 lets it
	// grow as needed.
	SizeHint int
	// Buffer, if not nil, is where the pack is built (from length 0; its
	// capacity is reused, and preferred over SizeHint). A caller that
	// recycles Packed.Data this way after uploading it keeps a backup's
	// memory flat instead of leaving a 16 MiB buffer to the GC per pack.
	Buffer []byte
}

// withDefaults fills in and clamps the options.
func (o Options) withDefaults() Options {
	if o.FrameSize <= 0 {
		o.FrameSize = DefaultFrameSize
	}
	o.FrameSize = min(o.FrameSize, MaxBlobSize)
	if o.LargeBlob <= 0 {
		o.LargeBlob = max(o.FrameSize/2, 1)
	}
	o.LargeBlob = min(o.LargeBlob, o.FrameSize)
	return o
}

// Packed is a finished pack: its bytes, its ID and the index entries of its
// blobs (Entry.Pack set), in the order they were added.
type Packed struct {
	ID      chunk.ID
	Data    []byte
	Entries []Entry
}
