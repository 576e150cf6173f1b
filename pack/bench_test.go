package pack

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/sandsnap/sandsnap/chunk"
)

// benchBlobs returns about 16 MiB (one data pack) of JavaScript-like
// blobs: mostly small files, as in node_modules, some large ones and a few
// incompressible ones.
func benchBlobs() ([]blob, int) {
	r := &splitmix{s: 42}
	var bs []blob
	total := 0
	for total < 16<<20 {
		var b []byte
		switch k := r.intn(100); {
		case k < 80:
			b = jsText(r, 100+r.intn(8<<10))
		case k < 97:
			b = jsText(r, 16<<10+r.intn(200<<10))
		default:
			b = randomBytes(r, 1+r.intn(100<<10))
		}
		bs = append(bs, blob{DataBlob, b})
		total += len(b)
	}
	return bs, total
}

func BenchmarkWrite(b *testing.B) {
	blobs, total := benchBlobs()
	levels := []struct {
		name  string
		level zstd.EncoderLevel
	}{{"default", zstd.SpeedDefault}, {"fastest", zstd.SpeedFastest}, {"better", zstd.SpeedBetterCompression}}
	for _, l := range levels {
		b.Run(l.name, func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l.level), zstd.WithEncoderCRC(false))
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			hashes := make([]chunk.ID, len(blobs))
			for i, bl := range blobs {
				hashes[i] = bl.id()
			}
			b.SetBytes(int64(total))
			var size int
			for b.Loop() {
				w := NewWriter(enc, Options{})
				for i, bl := range blobs {
					if err := w.Add(hashes[i], bl.t, bl.data); err != nil {
						b.Fatal(err)
					}
				}
				p, err := w.Finish()
				if err != nil {
					b.Fatal(err)
				}
				size = len(p.Data)
			}
			b.ReportMetric(float64(total)/float64(size), "ratio")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	blobs, total := benchBlobs()
	enc, err := NewEncoder()
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	p := writePack(b, enc, Options{}, blobs)
	b.SetBytes(int64(total))
	var frame []byte
	for b.Loop() {
		entries, err := ParseTrailer(p.ID, bytes.NewReader(p.Data), int64(len(p.Data)))
		if err != nil {
			b.Fatal(err)
		}
		var cur Frame
		for i, e := range entries {
			if i == 0 || e.Frame != cur {
				cur = e.Frame
				frame, err = DecodeFrame(dec, cur, p.Data[cur.Offset:cur.End()], frame[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			if _, err := Blob(frame, e); err != nil {
				b.Fatal(err)
			}
		}
	}
}
