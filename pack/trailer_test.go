package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// testPack is a small pack with a compressed frame of two blobs and a raw
// frame of one.
func testPack(t *testing.T) (Packed, []blob) {
	t.Helper()
	r := &splitmix{s: 11}
	blobs := []blob{{DataBlob, jsText(r, 3000)}, {DataBlob, jsText(r, 2000)}, {DataBlob, randomBytes(r, 8000)}}
	p := writePack(t, newTestEncoder(t), Options{FrameSize: 16 << 10, LargeBlob: 6000}, blobs)
	if len(p.Entries) != 3 || !p.Entries[0].Frame.Compressed || p.Entries[2].Frame.Compressed {
		t.Fatalf("unexpected test pack layout: %+v", p.Entries)
	}
	return p, blobs
}

// trailerOf builds a version-1 trailer body by hand.
func trailerOf(version byte, frames []Frame, blobs []Entry, frameOf []int) []byte {
	b := []byte{version}
	b = binary.AppendUvarint(b, uint64(len(frames)))
	for _, f := range frames {
		b = appendFrame(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(blobs)))
	for i, e := range blobs {
		b = appendBlob(b, e, frameOf[i])
	}
	return b
}

func TestParseTrailerCorrupt(t *testing.T) {
	p, _ := testPack(t)
	data := p.Data
	dataLen := int(p.Entries[2].Frame.End())
	frames := []Frame{p.Entries[0].Frame, p.Entries[2].Frame}
	id := chunk.Hash([]byte("x"))
	blobAt := func(off, n uint32) Entry { return Entry{ID: id, Type: DataBlob, Offset: off, Length: n} }
	good := []Entry{blobAt(0, 10), blobAt(0, 10)}
	goodOf := []int{0, 1}
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(data)
		f(b)
		return b
	}
	trailer := func(tr []byte) []byte { return withTrailer(data, dataLen, tr) }

	tests := []struct {
		name string
		pack []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"footer only", data[len(data)-footerSize:], ErrCorrupt},
		{"truncated end", data[:len(data)-1], ErrCorrupt},
		{"truncated start", data[1:], ErrCorrupt},
		{"bad magic", mutate(func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorrupt},
		{"trailer length zero", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[len(b)-footerSize:], 0) }), ErrCorrupt},
		{"trailer length too big", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[len(b)-footerSize:], uint32(len(b))) }), ErrCorrupt},
		{"trailer length huge", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[len(b)-footerSize:], ^uint32(0)) }), ErrCorrupt},
		{"checksum", mutate(func(b []byte) { b[len(b)-footerSize-1] ^= 0x40 }), ErrCorrupt},
		{"flipped trailer byte", mutate(func(b []byte) { b[dataLen+3] ^= 0x01 }), ErrCorrupt},
		{"version 0", trailer(trailerOf(0, frames, good, goodOf)), ErrVersion},
		{"version 2", trailer(trailerOf(2, frames, good, goodOf)), ErrVersion},
		{"sanity: hand-made trailer parses", trailer(trailerOf(Version, frames, good, goodOf)), nil},
		{"frames short of data", withTrailer(data, dataLen+1, trailerOf(Version, frames, good, goodOf)), ErrCorrupt},
		{"frames beyond data", trailer(trailerOf(Version, frames[:1], good[:1], goodOf[:1])[:0]), ErrCorrupt},
		{"frame beyond data", trailer(trailerOf(Version, []Frame{frames[0], {Length: frames[1].Length + 1, RawLength: frames[1].RawLength + 1}}, good, goodOf)), ErrCorrupt},
		{"unused frame", trailer(trailerOf(Version, frames, good[:1], goodOf[:1])), ErrCorrupt},
		{"blob outside frame", trailer(trailerOf(Version, frames, []Entry{blobAt(0, 10), blobAt(frames[1].RawLength-5, 10)}, goodOf)), ErrCorrupt},
		{"blob in missing frame", trailer(trailerOf(Version, frames, good, []int{0, 2})), ErrCorrupt},
		{"blob type 0", trailer(trailerOf(Version, frames, []Entry{good[0], {ID: id, Length: 1}}, goodOf)), ErrCorrupt},
		{"blob type 3", trailer(trailerOf(Version, frames, []Entry{good[0], {ID: id, Type: 3, Length: 1}}, goodOf)), ErrCorrupt},
		{"raw length over limit", trailer(trailerOf(Version, []Frame{{Length: frames[0].Length, RawLength: MaxBlobSize + 1, Compressed: true}, frames[1]}, good, goodOf)), ErrCorrupt},
		{"compressed frame longer than raw", trailer(trailerOf(Version, []Frame{{Length: frames[0].Length, RawLength: 20, Compressed: true}, frames[1]}, good, goodOf)), ErrCorrupt},
		{"unknown flags", trailer(append(trailerOf(Version, nil, nil, nil)[:1], 1, 0x80)), ErrCorrupt},
		{"trailing bytes", trailer(append(trailerOf(Version, frames, good, goodOf), 0)), ErrCorrupt},
		{"huge frame count", trailer([]byte{Version, 0xff, 0xff, 0xff, 0xff, 0x0f}), ErrCorrupt},
		{"huge blob count", trailer(append(trailerOf(Version, frames, nil, nil), 0xff, 0xff, 0xff, 0x7f)), ErrCorrupt},
		{"non-minimal varint", trailer(append([]byte{Version, 0x82, 0x00}, trailerOf(Version, frames, good, goodOf)[2:]...)), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ParseTrailer(p.ID, bytes.NewReader(tt.pack), int64(len(tt.pack)))
			if tt.want == nil {
				if err != nil || len(entries) != 2 {
					t.Fatalf("got %d entries, %v; want 2, nil", len(entries), err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if entries != nil {
				t.Errorf("entries = %v; want nil on error", entries)
			}
			if !strings.Contains(err.Error(), p.ID.Str()) {
				t.Errorf("error %q does not name pack %s", err, p.ID.Str())
			}
		})
	}
}

func TestParseTrailerReaders(t *testing.T) {
	p, _ := testPack(t)
	errDisk := errors.New("disk on fire")
	size := int64(len(p.Data))
	tests := []struct {
		name string
		r    io.ReaderAt
		size int64
		want error // nil: success
	}{
		{"bytes.Reader", bytes.NewReader(p.Data), size, nil},
		{"EOF with the last bytes", eofReaderAt{p.Data}, size, nil},
		{"section", io.NewSectionReader(bytes.NewReader(append([]byte("prefix"), p.Data...)), 6, size), size, nil},
		{"read error", errReaderAt{errDisk}, size, errDisk},
		{"timeout error", errReaderAt{iotest.ErrTimeout}, size, iotest.ErrTimeout},
		{"size beyond the object", bytes.NewReader(p.Data), size + 10, ErrCorrupt},
		{"size beyond the object, EOF reader", eofReaderAt{p.Data}, size + 10, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ParseTrailer(p.ID, tt.r, tt.size)
			if tt.want == nil {
				if err != nil || len(entries) != len(p.Entries) {
					t.Fatalf("got %d entries, %v; want %d", len(entries), err, len(p.Entries))
				}
				for i := range entries {
					if entries[i] != p.Entries[i] {
						t.Errorf("entry %d = %+v; want %+v", i, entries[i], p.Entries[i])
					}
				}
				return
			}
			wantErr(t, err, tt.want)
			if tt.want != ErrCorrupt && errors.Is(err, ErrCorrupt) {
				t.Errorf("read error %v reported as corruption", err)
			}
		})
	}
}

// TestParseTrailerShortReads reads a pack through an iotest.HalfReader, as
// a caller that streamed a pack to memory would.
func TestParseTrailerShortReads(t *testing.T) {
	p, blobs := testPack(t)
	data, err := io.ReadAll(iotest.HalfReader(bytes.NewReader(p.Data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(bytes.NewReader(data), p.Data); err != nil {
		t.Fatal(err)
	}
	_, got, err := readPack(newTestDecoder(t), p.ID, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blobs {
		if !bytes.Equal(got[i], blobs[i].data) {
			t.Errorf("blob %d differs", i)
		}
	}
}

func TestDecodeFrameCorrupt(t *testing.T) {
	p, _ := testPack(t)
	dec := newTestDecoder(t)
	cf, rf := p.Entries[0].Frame, p.Entries[2].Frame
	stored := func(f Frame) []byte { return bytes.Clone(p.Data[f.Offset:f.End()]) }
	flip := func(b []byte, i int) []byte { b[i] ^= 0x10; return b }

	// A zstd frame claiming 10 bytes that holds many 128 KiB RLE blocks:
	// a decompression bomb.
	bomb := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 10} // magic, single segment, FCS 10
	for i := range 1000 {
		bh := uint32(128<<10)<<3 | 1<<1 // RLE
		if i == 999 {
			bh |= 1
		}
		bomb = append(bomb, byte(bh), byte(bh>>8), byte(bh>>16), 'A')
	}
	enc := newTestEncoder(t)
	text := jsText(&splitmix{s: 5}, 4000)
	one := enc.EncodeAll(text, nil)
	noFCS, err := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	defer noFCS.Close()
	small := jsText(&splitmix{s: 5}, 200)
	withoutFCS := noFCS.EncodeAll(small, nil)
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, one...)

	tests := []struct {
		name   string
		f      Frame
		stored []byte
	}{
		{"flipped compressed byte", cf, flip(stored(cf), int(cf.Length)/2)},
		{"flipped zstd magic", cf, flip(stored(cf), 0)},
		{"truncated compressed", Frame{Length: cf.Length - 1, RawLength: cf.RawLength, Compressed: true}, stored(cf)[:cf.Length-1]},
		{"wrong raw length", Frame{Length: cf.Length, RawLength: cf.RawLength + 1, Compressed: true}, stored(cf)},
		{"stored length mismatch", cf, stored(cf)[:10]},
		{"raw length mismatch", Frame{Length: rf.Length, RawLength: rf.Length - 1}, stored(rf)},
		{"raw frame too large", Frame{Length: MaxBlobSize + 1, RawLength: MaxBlobSize + 1}, nil},
		{"bomb", Frame{Length: uint32(len(bomb)), RawLength: 128 << 20, Compressed: true}, bomb},
		{"bomb with matching size", Frame{Length: uint32(len(bomb)), RawLength: 10, Compressed: true}, bomb},
		{"two frames", Frame{Length: uint32(2 * len(one)), RawLength: uint32(2 * len(text)), Compressed: true}, append(bytes.Clone(one), one...)},
		{"trailing garbage", Frame{Length: uint32(len(one) + 1), RawLength: uint32(len(text)), Compressed: true}, append(bytes.Clone(one), 0)},
		{"no content size", Frame{Length: uint32(len(withoutFCS)), RawLength: uint32(len(small)), Compressed: true}, withoutFCS},
		{"skippable frame", Frame{Length: uint32(len(skippable)), RawLength: uint32(len(text)), Compressed: true}, skippable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := DecodeFrame(dec, tt.f, tt.stored, dst)
			// A flipped byte may still decode; then a blob's hash catches it.
			for _, e := range p.Entries[:2] {
				if err != nil {
					break
				}
				e.Frame = tt.f
				_, err = Blob(out[len(dst):], e)
			}
			wantErr(t, err, ErrCorrupt)
		})
	}

	// The good frames decode and keep dst's prefix.
	for _, f := range []Frame{cf, rf} {
		out, err := DecodeFrame(dec, f, stored(f), []byte("prefix"))
		if err != nil || !bytes.HasPrefix(out, []byte("prefix")) || len(out) != 6+int(f.RawLength) {
			t.Errorf("DecodeFrame(%+v) = %d bytes, %v", f, len(out), err)
		}
	}
}

func TestFlippedByteInPackFails(t *testing.T) {
	p, blobs := testPack(t)
	dec := newTestDecoder(t)
	caught := 0
	// Every flipped byte changes the pack's ID, and a read either fails
	// with ErrCorrupt (DecodeFrame, Blob, or the trailer's checksum) or,
	// where zstd has redundant bits, returns exactly the original blobs.
	for i := range p.Data {
		b := bytes.Clone(p.Data)
		b[i] ^= 0x04
		if chunk.Hash(b) == p.ID {
			t.Fatalf("byte %d flipped: pack ID unchanged", i)
		}
		_, got, err := readPack(dec, p.ID, b)
		if err != nil {
			wantErr(t, err, ErrCorrupt)
			caught++
			continue
		}
		for j := range blobs {
			if !bytes.Equal(got[j], blobs[j].data) {
				t.Fatalf("byte %d flipped: blob %d read back changed without an error", i, j)
			}
		}
	}
	if caught < len(p.Data)*9/10 {
		t.Errorf("only %d of %d flipped bytes caught", caught, len(p.Data))
	}
}

func TestBlob(t *testing.T) {
	frame := []byte("hello, world")
	pack := chunk.Hash([]byte("pack"))
	hello := Entry{ID: chunk.Hash([]byte("hello")), Type: DataBlob, Pack: pack, Length: 5}
	tests := []struct {
		name string
		e    Entry
		want string // "" for success
	}{
		{"ok", hello, ""},
		{"empty", Entry{ID: chunk.Hash(nil), Pack: pack, Offset: 12}, ""},
		{"beyond frame", Entry{ID: hello.ID, Pack: pack, Offset: 10, Length: 5}, "outside"},
		{"offset overflow", Entry{ID: hello.ID, Pack: pack, Offset: ^uint32(0), Length: 5}, "outside"},
		{"hash mismatch", Entry{ID: hello.ID, Pack: pack, Offset: 7, Length: 5}, "hash mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Blob(frame, tt.e)
			if tt.want == "" {
				if err != nil || chunk.Hash(got) != tt.e.ID {
					t.Fatalf("Blob = %q, %v", got, err)
				}
				return
			}
			wantErr(t, err, ErrCorrupt)
			for _, s := range []string{tt.want, tt.e.ID.Str(), pack.Str()} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestRecommendedCodecs(t *testing.T) {
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	r := &splitmix{s: 9}
	blobs := []blob{{DataBlob, jsText(r, 50)}, {DataBlob, jsText(r, 300)}, {DataBlob, jsText(r, 60000)}, {TreeBlob, jsText(r, 900)}, {DataBlob, randomBytes(r, 9000)}}
	p := writePack(t, enc, Options{}, blobs)
	_, got, err := readPack(dec, p.ID, p.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blobs {
		if !bytes.Equal(got[i], blobs[i].data) {
			t.Errorf("blob %d differs", i)
		}
	}
	if !p.Entries[2].Frame.Compressed {
		t.Errorf("text blob stored raw with the recommended encoder")
	}
}
