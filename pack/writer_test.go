package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
)

func TestRoundTrip(t *testing.T) {
	enc, dec := newTestEncoder(t), newTestDecoder(t)
	r := &splitmix{s: 1}
	text := func(n int) blob { return blob{DataBlob, jsText(r, n)} }
	random := func(n int) blob { return blob{DataBlob, randomBytes(r, n)} }
	tree := func(n int) blob { return blob{TreeBlob, jsText(r, n)} }
	empty := blob{DataBlob, []byte{}}
	many := func(n, size int) []blob {
		var bs []blob
		for range n {
			bs = append(bs, text(1+r.intn(size)))
		}
		return bs
	}

	tests := []struct {
		name  string
		opts  Options
		blobs []blob
		// frames is the wanted number of frames, compressed the wanted
		// number of compressed frames (-1: do not check).
		frames, compressed int
	}{
		{name: "no blobs", frames: 0, compressed: 0},
		{name: "one empty blob", blobs: []blob{empty}, frames: 1, compressed: 0},
		{name: "empty blobs only", blobs: []blob{empty, empty, {TreeBlob, nil}}, frames: 1, compressed: 0},
		{name: "one small text", blobs: []blob{text(3000)}, frames: 1, compressed: 1},
		{name: "tiny text stays raw", blobs: []blob{text(100)}, frames: 1, compressed: 0},
		{name: "small texts share a frame", blobs: many(20, 2000), frames: 1, compressed: 1},
		{name: "small texts fill frames", opts: Options{FrameSize: 8 << 10}, blobs: many(40, 2000), frames: -1, compressed: -1},
		{name: "large text own frame", opts: Options{FrameSize: 16 << 10}, blobs: []blob{text(100), text(9000), text(100)}, frames: 3, compressed: 1},
		{name: "incompressible small", blobs: []blob{random(5000)}, frames: 1, compressed: 0},
		{name: "incompressible large", blobs: []blob{random(200 << 10)}, frames: 1, compressed: 0},
		{name: "large compressible over a zstd block", blobs: []blob{text(700 << 10)}, frames: 1, compressed: 1},
		{name: "empty before large", blobs: []blob{empty, text(100 << 10), empty}, frames: 3, compressed: 1},
		{name: "trees", blobs: []blob{tree(500), tree(70 << 10), tree(30)}, frames: -1, compressed: -1},
		{name: "duplicates", blobs: []blob{{DataBlob, []byte("x")}, {DataBlob, []byte("x")}}, frames: 1, compressed: 0},
		{name: "every blob large", opts: Options{LargeBlob: 1}, blobs: []blob{text(10), empty, random(30), text(4000)}, frames: 4, compressed: 1},
		{name: "mixed", opts: Options{FrameSize: 32 << 10},
			blobs:  append(many(50, 3000), random(1000), empty, text(40<<10), random(50<<10), tree(2000), text(10)),
			frames: -1, compressed: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writePack(t, enc, tt.opts, tt.blobs)
			if got, want := p.ID, chunk.Hash(p.Data); got != want {
				t.Errorf("ID = %s; want hash of data %s", got.Str(), want.Str())
			}
			entries, got, err := readPack(dec, p.ID, p.Data)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(entries) != len(tt.blobs) || len(p.Entries) != len(tt.blobs) {
				t.Fatalf("%d entries in trailer, %d in Packed; want %d", len(entries), len(p.Entries), len(tt.blobs))
			}
			opts := tt.opts.withDefaults()
			frames := map[Frame]bool{}
			compressed := 0
			for i, b := range tt.blobs {
				e := entries[i]
				if e != p.Entries[i] {
					t.Errorf("blob %d: trailer entry %+v; Packed entry %+v", i, e, p.Entries[i])
				}
				if e.ID != b.id() || e.Type != b.t || e.Pack != p.ID || int(e.Length) != len(b.data) {
					t.Errorf("blob %d: entry %+v does not describe it", i, e)
				}
				if !bytes.Equal(got[i], b.data) {
					t.Errorf("blob %d: read %d bytes, differ from the %d written", i, len(got[i]), len(b.data))
				}
				if len(b.data) >= opts.LargeBlob && (e.Offset != 0 || e.Frame.RawLength != e.Length) {
					t.Errorf("blob %d: large blob shares frame %+v", i, e.Frame)
				}
				if len(b.data) < opts.LargeBlob && int(e.Frame.RawLength) > opts.FrameSize {
					t.Errorf("blob %d: frame %+v exceeds frame size %d", i, e.Frame, opts.FrameSize)
				}
				if !frames[e.Frame] && e.Frame.Compressed {
					compressed++
				}
				frames[e.Frame] = true
			}
			if tt.frames >= 0 && len(frames) != tt.frames {
				t.Errorf("%d frames; want %d", len(frames), tt.frames)
			}
			if tt.compressed >= 0 && compressed != tt.compressed {
				t.Errorf("%d compressed frames; want %d", compressed, tt.compressed)
			}
		})
	}
}

func TestIncompressibleStoredRaw(t *testing.T) {
	enc := newTestEncoder(t)
	data := randomBytes(&splitmix{s: 7}, 100<<10)
	p := writePack(t, enc, Options{}, []blob{{DataBlob, data}})
	e := p.Entries[0]
	if e.Frame.Compressed || e.Frame.Length != uint32(len(data)) {
		t.Fatalf("frame %+v; want raw frame of %d bytes", e.Frame, len(data))
	}
	if !bytes.Equal(p.Data[e.Frame.Offset:e.Frame.End()], data) {
		t.Errorf("raw frame does not hold the blob's bytes")
	}
}

func TestWriterErrors(t *testing.T) {
	enc := newTestEncoder(t)
	good := []byte("hello")
	tests := []struct {
		name string
		bad  func(w *Writer) error
		want error // nil: any non-nil error
	}{
		{"unknown type", func(w *Writer) error { return w.Add(chunk.Hash(good), 3, good) }, nil},
		{"zero type", func(w *Writer) error { return w.Add(chunk.Hash(good), 0, good) }, nil},
		{"too large", func(w *Writer) error {
			big := make([]byte, MaxBlobSize+1)
			return w.Add(chunk.ID{1}, DataBlob, big)
		}, nil},
		{"after abort", func(w *Writer) error { w.Abort(); return w.Add(chunk.Hash(good), DataBlob, good) }, ErrFinished},
		{"after finish", func(w *Writer) error {
			if _, err := w.Finish(); err != nil {
				return err
			}
			return w.Add(chunk.Hash(good), DataBlob, good)
		}, ErrFinished},
		{"finish twice", func(w *Writer) error {
			if _, err := w.Finish(); err != nil {
				return err
			}
			_, err := w.Finish()
			return err
		}, ErrFinished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(enc, Options{})
			if err := w.Add(chunk.Hash(good), DataBlob, good); err != nil {
				t.Fatal(err)
			}
			err := tt.bad(w)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
			// Sticky: every later call fails with the same error.
			if err2 := w.Add(chunk.Hash(good), DataBlob, good); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Add after error = %v; want %v", err2, err)
			}
			if _, err2 := w.Finish(); err2 == nil || (tt.want == nil && err2.Error() != err.Error()) {
				t.Errorf("Finish after error = %v; want %v", err2, err)
			}
			w.Abort()
			w.Abort()
			if err2 := w.Add(chunk.Hash(good), DataBlob, good); !errors.Is(err2, ErrFinished) {
				t.Errorf("Add after Abort = %v; want ErrFinished", err2)
			}
			if w.Size() != 0 || w.Count() != 0 {
				t.Errorf("after Abort Size = %d, Count = %d; want buffers released", w.Size(), w.Count())
			}
		})
	}
}

func TestFinishedPackIsIndependent(t *testing.T) {
	enc := newTestEncoder(t)
	w := NewWriter(enc, Options{})
	data := []byte("some blob")
	if err := w.Add(chunk.Hash(data), DataBlob, data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // Add copied it
	p, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := readPack(newTestDecoder(t), p.ID, p.Data); err != nil || string(got[0]) != "some blob" {
		t.Fatalf("read %q, %v; want the bytes as added", got, err)
	}
}

func TestSize(t *testing.T) {
	enc := newTestEncoder(t)
	r := &splitmix{s: 3}
	w := NewWriter(enc, Options{FrameSize: 16 << 10})
	for i := range 200 {
		var data []byte
		if i%10 == 9 {
			data = randomBytes(r, 20<<10)
		} else {
			data = jsText(r, 1+r.intn(3000))
		}
		if err := w.Add(chunk.Hash(data), DataBlob, data); err != nil {
			t.Fatal(err)
		}
	}
	// Size may shrink when the open frame is compressed; it is an estimate.
	prev := w.Size()
	p, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	// The estimate counts the open frame's plain bytes and a generous
	// trailer, so it never falls short of the real size...
	if prev < len(p.Data) {
		t.Errorf("Size = %d before Finish; pack has %d bytes", prev, len(p.Data))
	}
	// ...and overshoots by at most one frame of plain bytes plus trailer slack.
	if slack := 16<<10 + 200*16 + 64; prev > len(p.Data)+slack {
		t.Errorf("Size = %d before Finish; pack has %d bytes (slack %d)", prev, len(p.Data), slack)
	}
}
