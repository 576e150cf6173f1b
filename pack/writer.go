package pack

import (
	"bytes"
	"fmt"
	"math"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// Compression policy: a frame is stored compressed only if zstd saves at
// least 3% of it. Below that the saving is not worth a decode on every
// read (zstd already stores incompressible blocks raw, but the frame still
// has to go through the decoder).
const (
	rawPercent = 97
	// trailerPerBlob and trailerPerFrame are generous sizes of trailer
	// records, for Size's estimate.
	trailerPerBlob  = blobRecordMin + 8
	trailerPerFrame = 1 + 2*5
	trailerFixed    = 1 + 2*5 + footerSize
)

// Writer builds one pack in memory. Lifecycle: NewWriter, Add..., then
// exactly one of Finish or Abort. After an error every later call returns
// the same error (sticky); after Finish or Abort every call returns
// ErrFinished. Not safe for concurrent use; many Writers may share one
// encoder.
type Writer struct {
	enc  *zstd.Encoder
	opts Options

	err     error   // sticky; ErrFinished after Finish or Abort
	data    []byte  // the stored frames so far; becomes Packed.Data
	open    []byte  // plain bytes of the open frame, reused
	frames  []Frame // closed frames
	entries []Entry // one per Add; Frame set once the frame is closed
	frameOf []int   // entries[i] lives in frames[frameOf[i]]
	opened  int     // entries[opened:] are in the open frame
}

// NewWriter returns a Writer compressing with enc (shared, used only via
// EncodeAll, which is safe for concurrent use); enc must not be nil. See
// NewEncoder for the recommended encoder.
func NewWriter(enc *zstd.Encoder, opts Options) *Writer {
	return &Writer{enc: enc, opts: opts.withDefaults()}
}

// Add appends a blob; data is copied. id must be chunk.Hash(data) (the writer
// does not re-hash). Adding the same id twice to one pack is allowed but
// wasteful; the caller deduplicates. A blob longer than MaxBlobSize, an
// unknown type or a pack that would outgrow 4 GiB is an error, and like
// every error it is sticky.
func (w *Writer) Add(id chunk.ID, t BlobType, data []byte) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case !t.valid():
		w.err = fmt.Errorf("pack: add blob %s: unknown type %d", id.Str(), t)
	case len(data) > MaxBlobSize:
		w.err = fmt.Errorf("pack: add blob %s: %d bytes exceeds %d", id.Str(), len(data), MaxBlobSize)
	case int64(w.Size())+int64(len(data))+trailerPerBlob+trailerPerFrame > math.MaxUint32:
		w.err = fmt.Errorf("pack: add blob %s: pack would exceed 4 GiB", id.Str())
	}
	if w.err != nil {
		return w.err
	}
	if len(data) >= w.opts.LargeBlob {
		w.closeFrame()
		w.entries = append(w.entries, Entry{ID: id, Type: t, Length: uint32(len(data))})
		w.frameOf = append(w.frameOf, 0)
		w.writeFrame(data)
		return nil
	}
	if len(w.open)+len(data) > w.opts.FrameSize {
		w.closeFrame()
	}
	if w.open == nil {
		w.open = make([]byte, 0, w.opts.FrameSize)
	}
	w.entries = append(w.entries, Entry{ID: id, Type: t, Offset: uint32(len(w.open)), Length: uint32(len(data))})
	w.frameOf = append(w.frameOf, 0)
	w.open = append(w.open, data...)
	return nil
}

// closeFrame writes the open frame, if it holds any blob (even only empty
// ones, which make a frame of length 0).
func (w *Writer) closeFrame() {
	if w.opened == len(w.entries) {
		return
	}
	w.writeFrame(w.open)
	w.open = w.open[:0]
}

// writeFrame stores plain as the next frame, compressed straight into the
// pack's buffer, or raw if compression does not pay, and assigns the
// frame to every entry added since the last frame.
func (w *Writer) writeFrame(plain []byte) {
	if w.data == nil {
		switch {
		case w.opts.Buffer != nil:
			w.data = w.opts.Buffer[:0]
		case w.opts.SizeHint > 0:
			w.data = make([]byte, 0, w.opts.SizeHint)
		}
	}
	start := len(w.data)
	f := Frame{Offset: uint32(start), RawLength: uint32(len(plain)), Compressed: true}
	if len(plain) > 0 {
		w.data = w.enc.EncodeAll(plain, w.data)
	}
	stored := w.data[start:]
	// Only frames that DecodeFrame accepts are kept compressed: an encoder
	// configured to omit the content size (zstd does for inputs under 256
	// bytes unless single-segment) or to pad with skippable frames gets its
	// output stored raw.
	if len(plain) == 0 || int64(len(stored))*100 >= int64(len(plain))*rawPercent ||
		checkZstdFrame(stored, f.RawLength) != nil {
		w.data = append(w.data[:start], plain...)
		f.Compressed = false
	}
	f.Length = uint32(len(w.data) - start)
	for i := w.opened; i < len(w.entries); i++ {
		w.entries[i].Frame = f
		w.frameOf[i] = len(w.frames)
	}
	w.frames = append(w.frames, f)
	w.opened = len(w.entries)
}

// Size returns an estimate of the finished pack's size in bytes: the stored
// frames so far, the plain bytes of the open frame and an upper estimate of
// the trailer, for the caller's target-size decision. It is 0 after Finish
// or Abort.
func (w *Writer) Size() int {
	if w.err == ErrFinished {
		return 0
	}
	return len(w.data) + len(w.open) + trailerFixed +
		len(w.entries)*trailerPerBlob + (len(w.frames)+1)*trailerPerFrame
}

// Count returns the number of blobs added. It is 0 after Finish or Abort.
func (w *Writer) Count() int { return len(w.entries) }

// Finish closes the open frame, appends the trailer and returns the pack.
// The Writer keeps no reference to the returned bytes. A pack without blobs
// is valid (an empty frame table and blob table).
func (w *Writer) Finish() (Packed, error) {
	if w.err != nil {
		return Packed{}, w.err
	}
	w.closeFrame()
	w.data = appendTrailer(w.data, w.frames, w.entries, w.frameOf)
	if cap(w.data)-len(w.data) > len(w.data)/2 {
		// A small last pack in a large buffer (or append's doubling) can
		// leave most of it unused; callers keep several packs in flight
		// while they upload, so trim it.
		w.data = bytes.Clone(w.data)
	}
	p := Packed{ID: chunk.Hash(w.data), Data: w.data, Entries: w.entries}
	for i := range p.Entries {
		p.Entries[i].Pack = p.ID
	}
	w.release()
	return p, nil
}

// Abort discards the pack and releases its buffers. It may be called after
// an error, and more than once.
func (w *Writer) Abort() {
	w.release()
}

func (w *Writer) release() {
	*w = Writer{err: ErrFinished}
}
