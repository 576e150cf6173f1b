package pack

import (
	"fmt"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// NewEncoder returns the zstd encoder that sandsnap packs are written with
// at level 3 (zstd.SpeedDefault); see NewEncoderLevel.
func NewEncoder() (*zstd.Encoder, error) { return NewEncoderLevel(zstd.SpeedDefault) }

// NewEncoderLevel returns a zstd encoder for packs at the given level: as
// many concurrent EncodeAll calls as there are CPUs, and no per-frame CRC,
// because every blob is checked against its BLAKE3 ID on read and the pack
// ID covers the rest. Share one encoder between all Writers; it is safe for
// concurrent use through EncodeAll. The level is the writer's choice only:
// every level decodes with the same decoder.
func NewEncoderLevel(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("pack: new zstd encoder: %w", err)
	}
	return enc, nil
}

// NewDecoder returns the zstd decoder for DecodeFrame: as many concurrent
// DecodeAll calls as there are CPUs and at most MaxBlobSize bytes out of any
// call, which backs up DecodeFrame's own bounds. Share one decoder; it is
// safe for concurrent use through DecodeAll. Close it when done.
func NewDecoder() (*zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxBlobSize),
	)
	if err != nil {
		return nil, fmt.Errorf("pack: new zstd decoder: %w", err)
	}
	return dec, nil
}

// zstd block limits (RFC 8878 section 3.1.1.2).
const (
	zstdBlockHeader = 3
	zstdBlockMax    = 128 << 10
	zstdChecksum    = 4
)

// checkZstdFrame checks, without decoding, that stored is exactly one zstd
// frame (no skippable frames, no dictionary, nothing after it) whose header
// declares a content size of raw bytes. The decoder stops a frame that outgrows its
// declared size after at most one block, so with this check a hostile frame
// cannot make DecodeAll produce (and allocate) more than raw + 128 KiB,
// whatever the shared decoder's options are.
func checkZstdFrame(stored []byte, raw uint32) error {
	var h zstd.Header
	rest, err := h.DecodeAndStrip(stored)
	switch {
	case err != nil:
		return fmt.Errorf("zstd header: %w", err)
	case h.Skippable:
		return fmt.Errorf("skippable zstd frame")
	case h.DictionaryID != 0:
		return fmt.Errorf("zstd frame needs dictionary %d", h.DictionaryID)
	case !h.HasFCS:
		return fmt.Errorf("zstd frame without content size")
	case h.FrameContentSize != uint64(raw):
		return fmt.Errorf("zstd content size %d, want %d", h.FrameContentSize, raw)
	}
	for {
		if len(rest) < zstdBlockHeader {
			return fmt.Errorf("truncated zstd block header")
		}
		bh := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
		rest = rest[zstdBlockHeader:]
		size := int(bh >> 3)
		if size > zstdBlockMax {
			return fmt.Errorf("zstd block size %d", size)
		}
		switch (bh >> 1) & 3 {
		case 0, 2: // raw, compressed: size bytes follow
		case 1: // RLE: one byte repeated size times
			size = 1
		default:
			return fmt.Errorf("reserved zstd block type")
		}
		if len(rest) < size {
			return fmt.Errorf("truncated zstd block")
		}
		rest = rest[size:]
		if bh&1 != 0 {
			break
		}
	}
	if h.HasCheckSum {
		if len(rest) < zstdChecksum {
			return fmt.Errorf("truncated zstd checksum")
		}
		rest = rest[zstdChecksum:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the zstd frame", len(rest))
	}
	return nil
}

// DecodeFrame turns a frame's stored bytes into its plain bytes, appending
// to dst. dec is shared and used via DecodeAll. The result must be exactly
// f.RawLength bytes long (ErrCorrupt otherwise). A compressed frame must be
// one zstd frame declaring its content size (checkZstdFrame), so a
// decompression bomb is refused before it is decoded. dst is grown at most
// once, to len(dst)+f.RawLength. Errors name the frame's offset; the caller
// adds the pack's ID.
func DecodeFrame(dec *zstd.Decoder, f Frame, stored []byte, dst []byte) ([]byte, error) {
	if err := checkFrame(f); err != nil {
		return dst, err
	}
	if len(stored) != int(f.Length) {
		return dst, fmt.Errorf("%w: frame at %d: got %d stored bytes, want %d", ErrCorrupt, f.Offset, len(stored), f.Length)
	}
	if !f.Compressed {
		return append(dst, stored...), nil
	}
	if err := checkZstdFrame(stored, f.RawLength); err != nil {
		return dst, fmt.Errorf("%w: frame at %d: %v", ErrCorrupt, f.Offset, err)
	}
	start := len(dst)
	if cap(dst)-start < int(f.RawLength) {
		grown := make([]byte, start, start+int(f.RawLength))
		copy(grown, dst)
		dst = grown
	}
	out, err := dec.DecodeAll(stored, dst)
	if err != nil {
		return dst, fmt.Errorf("%w: frame at %d: zstd: %v", ErrCorrupt, f.Offset, err)
	}
	if len(out)-start != int(f.RawLength) {
		return dst, fmt.Errorf("%w: frame at %d: decoded %d bytes, want %d", ErrCorrupt, f.Offset, len(out)-start, f.RawLength)
	}
	return out, nil
}
