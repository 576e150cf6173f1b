package chunk

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite golden files in ../testdata/chunk")

// testParams are fixed so that boundaries are comparable across runs; the
// polynomial is restic/chunker's test polynomial.
var testParams = Params{Polynomial: 0x3DA3358B4DC173, MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: DefaultAverageBits}

// testInput is 32 MiB of seeded pseudo-random bytes with a long zero run,
// so the golden file pins both content-defined cuts and the cuts of a hole.
func testInput() []byte {
	rng := rand.New(rand.NewPCG(23, 42))
	b := make([]byte, 32<<20)
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	clear(b[20<<20 : 23<<20])
	return b
}

type boundary struct {
	Offset int64  `json:"offset"`
	Size   int    `json:"size"`
	ID     string `json:"id"`
}

func cut(t testing.TB, c *Chunker, r io.Reader) []boundary {
	t.Helper()
	c.Reset(r)
	var out []boundary
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, boundary{ch.Offset, len(ch.Data), Hash(ch.Data).String()})
	}
}

func TestGoldenBoundaries(t *testing.T) {
	input := testInput()
	got := cut(t, NewChunker(testParams), bytes.NewReader(input))
	const golden = "../testdata/chunk/boundaries.golden.json"
	if *update {
		b, _ := json.MarshalIndent(got, "", " ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var want []boundary
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("chunk boundaries or IDs changed (%d chunks, golden has %d): this breaks deduplication against every existing repository; "+
			"if intended, it needs a new repository format version, then `go test ./chunk -update`", len(got), len(want))
	}
	var sum int64
	for i, c := range got {
		if c.Offset != sum {
			t.Fatalf("chunk %d starts at %d; want %d", i, c.Offset, sum)
		}
		sum += int64(c.Size)
		if i < len(got)-1 && (c.Size < int(testParams.MinSize) || c.Size > int(testParams.MaxSize)) {
			t.Errorf("chunk %d has size %d outside the bounds", i, c.Size)
		}
	}
	if sum != int64(len(input)) {
		t.Errorf("chunks cover %d bytes; want %d", sum, len(input))
	}
}

func TestChunkerShortReads(t *testing.T) {
	input := testInput()[:6<<20]
	c := NewChunker(testParams)
	want := cut(t, c, bytes.NewReader(input))
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(input)),
		"half":     iotest.HalfReader(bytes.NewReader(input)),
		"data+EOF": iotest.DataErrReader(bytes.NewReader(input)),
	} {
		if got := cut(t, c, r); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: boundaries differ from a plain read", name)
		}
	}
	boom := errors.New("boom")
	c.Reset(io.MultiReader(bytes.NewReader(input[:1<<20]), iotest.ErrReader(boom)))
	var err error
	for err == nil {
		_, err = c.Next()
	}
	if !errors.Is(err, boom) {
		t.Errorf("read error = %v; want %v", err, boom)
	}
}

func TestChunkerSmallAndEmpty(t *testing.T) {
	c := NewChunker(testParams)
	if got := cut(t, c, strings.NewReader("")); len(got) != 0 {
		t.Errorf("empty input gave %d chunks", len(got))
	}
	small := []byte("module.exports = 42\n")
	got := cut(t, c, bytes.NewReader(small))
	if len(got) != 1 || got[0].ID != Hash(small).String() {
		t.Errorf("small input: %v; want one chunk with the whole file's hash", got)
	}
}

func TestParams(t *testing.T) {
	p, err := NewParams()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("NewParams() is invalid: %v", err)
	}
	for name, bad := range map[string]Params{
		"reducible": {Polynomial: 0x3DA3358B4DC172, MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: 20},
		"min>max":   {Polynomial: testParams.Polynomial, MinSize: 2 << 20, MaxSize: 1 << 20, AverageBits: 20},
		"bits":      {Polynomial: testParams.Polynomial, MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: 40},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: Validate = %v; want ErrInvalidParams", name, err)
		}
	}
}

func TestID(t *testing.T) {
	id := Hash([]byte("sandsnap"))
	p, err := ParseID(id.String())
	if err != nil || p != id {
		t.Fatalf("ParseID(String()) = %v, %v; want %v", p, err, id)
	}
	if _, err := ParseID(strings.ToUpper(id.String())); err != nil {
		t.Errorf("upper-case hex refused: %v", err)
	}
	for _, s := range []string{"", "abc", id.String() + "0", "zz" + id.String()[2:]} {
		if _, err := ParseID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v; want ErrInvalidID", s, err)
		}
	}
	b, _ := json.Marshal(id)
	var back ID
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Errorf("JSON round trip = %v, %v", back, err)
	}
	if !(ID{}).IsZero() || id.IsZero() || len(id.Str()) != 8 {
		t.Error("IsZero or Str wrong")
	}
}

func BenchmarkChunker(b *testing.B) {
	input := testInput()
	c := NewChunker(testParams)
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		c.Reset(bytes.NewReader(input))
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkHash(b *testing.B) {
	data := testInput()[:1<<20]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Hash(data)
	}
}

func TestHashReader(t *testing.T) {
	data := testInput()[:3<<20]
	got, err := HashReader(iotest.HalfReader(bytes.NewReader(data)))
	if err != nil || got != Hash(data) {
		t.Errorf("HashReader = %v, %v; want %v", got, err, Hash(data))
	}
	boom := errors.New("boom")
	if _, err := HashReader(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("HashReader of a failing reader = %v; want %v", err, boom)
	}
}
