package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// splitmix is a tiny deterministic generator (SplitMix64), defined here
// rather than taken from math/rand so that golden inputs can never change
// under a Go upgrade.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *splitmix) intn(n int) int { return int(r.next() % uint64(n)) }

// randomBytes returns n incompressible bytes.
func randomBytes(r *splitmix, n int) []byte {
	b := make([]byte, 0, n+8)
	for len(b) < n {
		v := r.next()
		for i := 0; i < 8; i++ {
			b = append(b, byte(v>>(8*i)))
		}
	}
	return b[:n]
}

var jsWords = strings.Fields(`function return const let var if else for while import export default
from require module exports this null undefined true false new class extends async await
Promise resolve reject callback err data value key options config props state length push
map filter reduce forEach Object keys assign prototype call apply bind typeof instanceof
console log error warn JSON stringify parse Array isArray String Number Boolean Symbol`)

var jsPunct = []string{"(", ")", "{", "}", ";", ",", ".", " = ", " === ", " && ", " || ", "\n", "\n  ", "\n    ", ": ", "[", "]", " => "}

// jsText returns about n bytes of JavaScript-like text: compressible by
// zstd by roughly the ratio of real node_modules sources.
func jsText(r *splitmix, n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 32)
	for b.Len() < n {
		switch r.intn(4) {
		case 0, 1:
			b.WriteString(jsWords[r.intn(len(jsWords))])
		case 2:
			b.WriteString(jsPunct[r.intn(len(jsPunct))])
		default:
			fmt.Fprintf(&b, "_%x", r.next()&0xffff)
		}
	}
	return b.Bytes()[:n]
}

// blob is a test input.
type blob struct {
	t    BlobType
	data []byte
}

func (b blob) id() chunk.ID { return chunk.Hash(b.data) }

// newTestEncoder returns the fixed encoder of the golden files and tests:
// one goroutine so output never depends on scheduling.
func newTestEncoder(t testing.TB) *zstd.Encoder {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

func newTestDecoder(t testing.TB) *zstd.Decoder {
	t.Helper()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Close)
	return dec
}

// writePack writes blobs into one pack.
func writePack(t testing.TB, enc *zstd.Encoder, opts Options, blobs []blob) Packed {
	t.Helper()
	w := NewWriter(enc, opts)
	for i, b := range blobs {
		if err := w.Add(b.id(), b.t, b.data); err != nil {
			t.Fatalf("Add blob %d: %v", i, err)
		}
	}
	if got, want := w.Count(), len(blobs); got != want {
		t.Errorf("Count = %d; want %d", got, want)
	}
	p, err := w.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return p
}

// readPack parses p's trailer and returns every blob's bytes in trailer
// order, decoding each frame once.
func readPack(dec *zstd.Decoder, id chunk.ID, data []byte) ([]Entry, [][]byte, error) {
	entries, err := ParseTrailer(id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, err
	}
	out := make([][]byte, len(entries))
	decoded := map[Frame][]byte{}
	for i, e := range entries {
		plain, ok := decoded[e.Frame]
		if !ok {
			plain, err = DecodeFrame(dec, e.Frame, data[e.Frame.Offset:e.Frame.End()], nil)
			if err != nil {
				return nil, nil, err
			}
			decoded[e.Frame] = plain
		}
		b, err := Blob(plain, e)
		if err != nil {
			return nil, nil, err
		}
		out[i] = bytes.Clone(b)
	}
	return entries, out, nil
}

// withTrailer returns data's first dataLen bytes followed by trailer and a
// footer that is correct for it, so that tests can reach the checks behind
// the checksum.
func withTrailer(data []byte, dataLen int, trailer []byte) []byte {
	out := append(bytes.Clone(data[:dataLen]), trailer...)
	return appendFooter(out, trailer)
}

// errReaderAt fails every read.
type errReaderAt struct{ err error }

func (r errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, r.err }

// eofReaderAt returns io.EOF together with a read that reaches the end, as
// some io.ReaderAt implementations (os.File on some systems) do.
type eofReaderAt struct{ b []byte }

func (r eofReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if off+int64(n) == int64(len(r.b)) {
		return n, io.EOF
	}
	return n, nil
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v; want %v", err, target)
	}
}
