package pack

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sandsnap/sandsnap/chunk"
)

// index record sizes, for bounding counts by the bytes left.
const (
	packRecordMin       = chunk.IDSize + 2 // ID, frame count, blob count
	indexFrameRecordMin = 3                // gap, flags, length
)

// compareEntries is the order of an index delta: pack, frame (offset, then
// length, since an empty frame may share its offset with the next one),
// then the blob's offset, length, ID and type.
func compareEntries(a, b *Entry) int {
	if c := bytes.Compare(a.Pack[:], b.Pack[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Frame.Offset, b.Frame.Offset); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Frame.Length, b.Frame.Length); c != 0 {
		return c
	}
	return compareBlobs(a, b)
}

func compareBlobs(a, b *Entry) int {
	if c := cmp.Compare(a.Offset, b.Offset); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Length, b.Length); c != 0 {
		return c
	}
	if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Type, b.Type)
}

// EncodeIndex encodes an index delta (the entries of the packs that one
// backup wrote), deterministically: sorted by pack, then frame offset, then
// blob offset; entries that are equal in every field are written once.
// The input is not modified. Entries must be consistent (a known type, a
// non-zero pack, the blob inside its frame, frames of one pack that agree
// and do not overlap); otherwise the error wraps ErrCorrupt.
func EncodeIndex(entries []Entry) ([]byte, error) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int { return compareEntries(&a, &b) })
	sorted = slices.Compact(sorted)
	for i := range sorted {
		if err := checkIndexEntry(sorted[i]); err != nil {
			return nil, fmt.Errorf("pack: encode index: %w", err)
		}
	}
	var packs int
	for i := range sorted {
		if i == 0 || sorted[i].Pack != sorted[i-1].Pack {
			packs++
		}
	}
	b := make([]byte, 0, 1+len(sorted)*(blobRecordMin+8))
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(packs))
	for len(sorted) > 0 {
		n := 1
		for n < len(sorted) && sorted[n].Pack == sorted[0].Pack {
			n++
		}
		var err error
		if b, err = appendIndexPack(b, sorted[:n]); err != nil {
			return nil, fmt.Errorf("pack: encode index: pack %s: %w", sorted[0].Pack.Str(), err)
		}
		sorted = sorted[n:]
	}
	return b, nil
}

func checkIndexEntry(e Entry) error {
	switch {
	case e.Pack.IsZero():
		return fmt.Errorf("%w: blob %s has no pack", ErrCorrupt, e.ID.Str())
	case !e.Type.valid():
		return fmt.Errorf("%w: blob %s: unknown type %d", ErrCorrupt, e.ID.Str(), e.Type)
	}
	if err := checkFrame(e.Frame); err != nil {
		return err
	}
	return checkBlob(e)
}

// appendIndexPack writes one pack's group: its ID, its frame table and its
// blob table. es is sorted and belongs to one pack.
func appendIndexPack(b []byte, es []Entry) ([]byte, error) {
	frames := make([]Frame, 0, 8)
	frameOf := make([]int, len(es))
	for i, e := range es {
		if n := len(frames); n > 0 && frames[n-1].Offset == e.Frame.Offset && frames[n-1].Length == e.Frame.Length {
			if frames[n-1] != e.Frame {
				return nil, fmt.Errorf("%w: frames at %d disagree", ErrCorrupt, e.Frame.Offset)
			}
		} else {
			if n > 0 && e.Frame.Offset < frames[n-1].End() {
				return nil, fmt.Errorf("%w: frames at %d and %d overlap", ErrCorrupt, frames[n-1].Offset, e.Frame.Offset)
			}
			frames = append(frames, e.Frame)
		}
		frameOf[i] = len(frames) - 1
	}
	b = append(b, es[0].Pack[:]...)
	b = binary.AppendUvarint(b, uint64(len(frames)))
	var end uint32
	for _, f := range frames {
		b = binary.AppendUvarint(b, uint64(f.Offset-end))
		b = appendFrame(b, f)
		end = f.End()
	}
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i, e := range es {
		b = appendBlob(b, e, frameOf[i])
	}
	return b, nil
}

// DecodeIndex decodes an index delta, checking its version and bounds. It
// accepts only what EncodeIndex writes: packs in increasing order, frames
// increasing and not overlapping, each holding a blob, blobs in order
// without duplicates, minimal varints and nothing trailing; so
// EncodeIndex(DecodeIndex(b)) == b. Errors wrap ErrCorrupt or ErrVersion.
func DecodeIndex(data []byte) ([]Entry, error) {
	entries, err := decodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("pack: decode index: %w", err)
	}
	return entries, nil
}

func decodeIndex(data []byte) ([]Entry, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if data[0] != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrVersion, data[0], Version)
	}
	rd := reader{b: data[1:]}
	npacks := rd.count("pack count", packRecordMin)
	var entries []Entry
	var prev chunk.ID
	for i := range npacks {
		pack := rd.id()
		if rd.err == nil && (pack.IsZero() || (i > 0 && bytes.Compare(prev[:], pack[:]) >= 0)) {
			rd.fail("pack %s out of order", pack.Str())
		}
		prev = pack
		var err error
		if entries, err = decodeIndexPack(&rd, pack, entries); err != nil {
			return nil, fmt.Errorf("pack %s: %w", pack.Str(), err)
		}
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if len(rd.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rd.b))
	}
	return entries, nil
}

// decodeIndexPack decodes one pack's frame and blob tables and appends its
// entries.
func decodeIndexPack(rd *reader, pack chunk.ID, entries []Entry) ([]Entry, error) {
	nframes := rd.count("frame count", indexFrameRecordMin)
	if rd.err == nil && nframes == 0 {
		rd.fail("no frames")
	}
	if rd.err != nil {
		return nil, rd.err
	}
	frames := make([]Frame, nframes)
	used := make([]bool, nframes)
	var end uint32
	for i := range frames {
		gap := rd.uvarint("frame gap", uint64(^uint32(0)-end))
		frames[i] = rd.frame(end + uint32(gap))
		if rd.err != nil {
			return nil, rd.err
		}
		if i > 0 && gap == 0 && frames[i-1].Length == 0 && frames[i].Length == 0 {
			return nil, fmt.Errorf("%w: duplicate empty frame at %d", ErrCorrupt, frames[i].Offset)
		}
		end = frames[i].End()
	}
	nblobs := rd.count("blob count", blobRecordMin)
	entries = slices.Grow(entries, nblobs)
	first := len(entries)
	for range nblobs {
		e, fi := rd.blob(nframes)
		if rd.err != nil {
			return nil, rd.err
		}
		e.Pack, e.Frame = pack, frames[fi]
		if err := checkBlob(e); err != nil {
			return nil, err
		}
		if n := len(entries); n > first {
			p := &entries[n-1]
			if c := cmp.Compare(p.Frame.Offset, e.Frame.Offset); c > 0 || c == 0 && (p.Frame.Length > e.Frame.Length ||
				p.Frame.Length == e.Frame.Length && compareBlobs(p, &e) >= 0) {
				return nil, fmt.Errorf("%w: blob %s out of order", ErrCorrupt, e.ID.Str())
			}
		}
		used[fi] = true
		entries = append(entries, e)
	}
	if rd.err != nil {
		return nil, rd.err
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("%w: frame %d holds no blob", ErrCorrupt, i)
		}
	}
	return entries, nil
}
