// Package pack writes and reads packs, the immutable objects that hold a
// repository's blobs, and index deltas, the objects that say which pack
// holds which blob. The byte layout of both is specified in FORMAT.md.
//
// # Words
//
// A blob is a chunk of a file or an encoded tree, named by its ID, the
// BLAKE3-256 of its plain bytes (chunk.ID). Its BlobType says which.
//
// A frame is a run of bytes inside a pack that holds one or more blobs,
// either compressed as one zstd frame or stored raw. Small blobs are
// compressed together, many to a frame of up to Options.FrameSize plain
// bytes (128 KiB by default), because most of a node_modules tree is files
// of a few KiB that compress far better together than one by one. A blob
// of at least Options.LargeBlob bytes gets a frame of its own, so a reader
// that needs it fetches nothing else. A frame that zstd does not shrink by
// at least 3% is stored raw. A reader fetches and decodes whole frames, each
// once, however many of its blobs it needs.
//
// A pack is the frames, one after another from offset 0, followed by a
// trailer that lists them and the blobs in them, and a fixed-size footer
// at the very end. A pack's ID is the BLAKE3-256 of all its bytes, so a
// pack verifies itself. A reader of a pack in an object store reads the
// footer and the trailer with two range reads from the end (ParseTrailer),
// then reads frames by range (DecodeFrame) and checks every blob against
// its ID (Blob).
//
// An entry (Entry) locates one blob: its pack, its frame (offset and
// stored length in the pack, plain length, compressed or not) and its
// offset and length inside the decoded frame. A Writer returns the entries
// of the pack it wrote; ParseTrailer recovers them from the pack.
//
// An index delta is one immutable object per backup that lists the entries
// of the packs the backup wrote, grouped by pack (EncodeIndex,
// DecodeIndex). Garbage collection folds deltas together.
//
// # Writer lifecycle
//
// NewWriter, then Add for each blob, watching Size to decide when the pack
// is full (repo's target is 16 MiB), then exactly one of Finish, which
// returns the pack's bytes, ID and entries, or Abort, which drops them. A
// Writer builds its pack in memory. An error from Add is sticky: every
// later call returns it. After Finish or Abort every call returns
// ErrFinished. A Writer is not safe for concurrent use, but many Writers
// may share one *zstd.Encoder, which they use only through EncodeAll.
//
// # Codecs
//
// NewEncoder and NewDecoder build the shared zstd encoder and decoder with
// the recommended options. DecodeFrame bounds what any decoder produces by
// checking the frame's structure and declared size before decoding, so a
// hostile pack cannot make it allocate more than the 64 MiB frame limit.
//
// # Errors
//
// Bad bytes give errors that wrap ErrCorrupt (ErrVersion for a version this
// code does not read) and name the pack, and the blob where there is one.
// ParseTrailer, DecodeFrame and DecodeIndex never panic on any input.
package pack
