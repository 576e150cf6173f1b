package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// FuzzParseTrailer feeds arbitrary packs to ParseTrailer: it must never
// panic, must return ErrCorrupt or ErrVersion on failure, and what it
// accepts must lie inside the pack. The fuzzer also gets a second pack with
// a correct footer for the last tlen bytes, to reach the checks behind the
// checksum; and every accepted frame goes through DecodeFrame.
func FuzzParseTrailer(f *testing.F) {
	for _, p := range seedPacks(f) {
		tlen := binary.LittleEndian.Uint32(p[len(p)-footerSize:])
		f.Add(p, uint16(0))
		f.Add(p[:len(p)-footerSize], uint16(tlen))
	}
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{Version, 0, 0}, uint16(3))
	dec := newTestDecoder(f)
	f.Fuzz(func(t *testing.T, data []byte, tlen uint16) {
		checkParse(t, dec, data)
		if int(tlen) <= len(data) {
			checkParse(t, dec, appendFooter(bytes.Clone(data), data[len(data)-int(tlen):]))
		}
	})
}

func checkParse(t *testing.T, dec *zstd.Decoder, data []byte) {
	id := chunk.Hash(data)
	entries, err := ParseTrailer(id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Fatalf("error %v is neither ErrCorrupt nor ErrVersion", err)
		}
		return
	}
	for _, e := range entries {
		if e.Pack != id || int(e.Frame.End()) > len(data)-footerSize || e.Offset+e.Length > e.Frame.RawLength {
			t.Fatalf("accepted entry %+v outside a pack of %d bytes", e, len(data))
		}
		if e.Frame.RawLength > 1<<20 {
			continue // allocation is RawLength up front; keep runs fast
		}
		plain, err := DecodeFrame(dec, e.Frame, data[e.Frame.Offset:e.Frame.End()], nil)
		if err == nil {
			_, err = Blob(plain, e)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
	}
}

// seedPacks returns the golden pack and a few small packs.
func seedPacks(f *testing.F) [][]byte {
	// Small seeds only: the fuzzer minimizes every new interesting input,
	// which takes minutes for a pack the size of the golden one.
	var seeds [][]byte
	enc := newTestEncoder(f)
	r := &splitmix{s: 99}
	for _, blobs := range [][]blob{
		nil,
		{{DataBlob, nil}},
		{{DataBlob, jsText(r, 600)}, {TreeBlob, randomBytes(r, 100)}},
		{{DataBlob, jsText(r, 300)}, {DataBlob, jsText(r, 700)}, {DataBlob, randomBytes(r, 200)}, {DataBlob, jsText(r, 20)}},
	} {
		seeds = append(seeds, writePack(f, enc, Options{FrameSize: 1024, LargeBlob: 500}, blobs).Data)
	}
	return seeds
}

// FuzzDecodeFrame feeds arbitrary compressed frames to DecodeFrame: no
// panic, ErrCorrupt on failure, exactly RawLength bytes on success.
func FuzzDecodeFrame(f *testing.F) {
	enc := newTestEncoder(f)
	text := jsText(&splitmix{s: 1}, 3000)
	f.Add(enc.EncodeAll(text, nil), uint32(len(text)))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 10, 0x13, 0, 0x10, 'A'}, uint32(10))
	dec := newTestDecoder(f)
	f.Fuzz(func(t *testing.T, stored []byte, raw uint32) {
		if raw > 1<<20 {
			raw %= 1 << 20 // allocation is RawLength up front; keep runs fast
		}
		fr := Frame{Length: uint32(len(stored)), RawLength: raw, Compressed: true}
		out, err := DecodeFrame(dec, fr, stored, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(out) != int(raw) {
			t.Fatalf("decoded %d bytes; want %d", len(out), raw)
		}
	})
}

// FuzzDecodeIndex feeds arbitrary index deltas to DecodeIndex: no panic,
// and what it accepts re-encodes to the same bytes.
func FuzzDecodeIndex(f *testing.F) {
	for _, p := range seedPacks(f) {
		entries, err := ParseTrailer(chunk.Hash(p), bytes.NewReader(p), int64(len(p)))
		if err != nil {
			f.Fatal(err)
		}
		b, err := EncodeIndex(entries)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{Version, 0})
	f.Add(idx(chunk.ID{1}, chunk.ID{2}, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := DecodeIndex(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		again, err := EncodeIndex(entries)
		if err != nil {
			t.Fatalf("decoded entries do not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded and re-encoded index differs from the input")
		}
	})
}

// FuzzWriteRead cuts data into blobs (lengths drawn from seed), writes
// them into a pack with the fuzzed options, and reads every blob back,
// through the trailer and through an index delta.
func FuzzWriteRead(f *testing.F) {
	r := &splitmix{s: 5}
	// Small seeds: the fuzzer minimizes each new interesting input for up
	// to -fuzzminimizetime (60s by default), running it thousands of times.
	f.Add(jsText(r, 800), uint64(1), uint16(400), uint16(150))
	f.Add(randomBytes(r, 300), uint64(2), uint16(0), uint16(0))
	f.Add(append(jsText(r, 300), randomBytes(r, 200)...), uint64(3), uint16(256), uint16(1))
	f.Add([]byte{}, uint64(4), uint16(1), uint16(1))
	enc, dec := newTestEncoder(f), newTestDecoder(f)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, frameSize, largeBlob uint16) {
		opts := Options{FrameSize: int(frameSize), LargeBlob: int(largeBlob)}
		cut := &splitmix{s: seed}
		maxLen := 2*opts.withDefaults().LargeBlob + 1
		var blobs []blob
		for len(data) > 0 || len(blobs) == 0 {
			n := min(cut.intn(maxLen), len(data))
			if len(blobs) == 63 {
				// Every frame costs the encoder a table reset; keep the
				// number of frames, and so each run, small.
				n = len(data)
			}
			blobs = append(blobs, blob{BlobType(1 + cut.intn(2)), data[:n]})
			data = data[n:]
		}
		p := writePack(t, enc, opts, blobs)
		entries, got, err := readPack(dec, p.ID, p.Data)
		if err != nil {
			t.Fatal(err)
		}
		for i := range blobs {
			if !bytes.Equal(got[i], blobs[i].data) || entries[i] != p.Entries[i] {
				t.Fatalf("blob %d differs", i)
			}
		}
		index, err := EncodeIndex(p.Entries)
		if err != nil {
			t.Fatal(err)
		}
		fromIndex, err := DecodeIndex(index)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range fromIndex {
			plain, err := DecodeFrame(dec, e.Frame, p.Data[e.Frame.Offset:e.Frame.End()], nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Blob(plain, e); err != nil {
				t.Fatal(err)
			}
		}
	})
}
