package chunk

import (
	"errors"
	"fmt"
	"io"

	"github.com/restic/chunker"
)

// Default bounds: restic's, which suit both small source files (one chunk
// each) and multi-GB databases (about 1 MiB chunks, so a page-sized edit
// re-uploads about 1 MiB compressed).
const (
	DefaultMinSize     = 512 << 10
	DefaultMaxSize     = 8 << 20
	DefaultAverageBits = 20
)

// ErrInvalidParams is returned for chunker parameters that cannot be used.
var ErrInvalidParams = errors.New("chunk: invalid chunker parameters")

// Params fixes every chunk boundary of a repository. It is stored in the
// repository config and never changes after init.
type Params struct {
	Polynomial  chunker.Pol `json:"polynomial"`
	MinSize     uint        `json:"min_size"`
	MaxSize     uint        `json:"max_size"`
	AverageBits int         `json:"average_bits"`
}

// NewParams returns parameters with the default bounds and a random
// irreducible polynomial, as chosen when a repository is created. A random
// polynomial per repository keeps chunk boundaries from leaking file
// contents across repositories (restic's reasoning).
func NewParams() (Params, error) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Params{}, fmt.Errorf("chunk: choose polynomial: %w", err)
	}
	return Params{Polynomial: pol, MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: DefaultAverageBits}, nil
}

// Validate reports whether p can drive a chunker.
func (p Params) Validate() error {
	switch {
	case !p.Polynomial.Irreducible():
		return fmt.Errorf("%w: polynomial %v is not irreducible", ErrInvalidParams, p.Polynomial)
	case p.MinSize < 64 || p.MaxSize < p.MinSize || p.MaxSize > 64<<20:
		return fmt.Errorf("%w: bounds %d..%d", ErrInvalidParams, p.MinSize, p.MaxSize)
	case p.AverageBits < 10 || p.AverageBits > 26:
		return fmt.Errorf("%w: average bits %d", ErrInvalidParams, p.AverageBits)
	}
	return nil
}

// Chunk is one piece of a stream. Data is valid only until the next call
// to Chunker.Next.
type Chunk struct {
	Offset int64
	Data   []byte
}

// Chunker cuts a stream into content-defined chunks. A Chunker is reused
// across files with Reset, which keeps its buffers; it is not safe for
// concurrent use.
type Chunker struct {
	p   Params
	c   *chunker.Chunker
	buf []byte
	off int64
}

// NewChunker returns a chunker for p. Call Reset before the first Next.
func NewChunker(p Params) *Chunker {
	c := chunker.NewWithBoundaries(nil, p.Polynomial, p.MinSize, p.MaxSize)
	return &Chunker{p: p, c: c, buf: make([]byte, 0, p.MaxSize)}
}

// Reset starts a new stream read from r.
func (c *Chunker) Reset(r io.Reader) {
	c.c.ResetWithBoundaries(r, c.p.Polynomial, c.p.MinSize, c.p.MaxSize)
	c.c.SetAverageBits(c.p.AverageBits)
	c.off = 0
}

// Next returns the next chunk, or io.EOF after the last one. An empty
// stream has no chunks.
func (c *Chunker) Next() (Chunk, error) {
	ch, err := c.c.Next(c.buf)
	if err != nil {
		return Chunk{}, err
	}
	c.buf = ch.Data[:0]
	out := Chunk{Offset: c.off, Data: ch.Data}
	c.off += int64(ch.Length)
	return out, nil
}
