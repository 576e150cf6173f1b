package chunk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// IDSize is the length of an ID in bytes.
const IDSize = 32

// ErrInvalidID is returned by ParseID for a string that is not 64 hex digits.
var ErrInvalidID = errors.New("chunk: invalid ID")

// ID is the BLAKE3-256 hash of a blob's plain bytes. IDs are comparable with
// == and usable as map keys. The zero ID means "none".
type ID [IDSize]byte

// Hash returns the ID of data.
func Hash(data []byte) ID {
	return ID(blake3.Sum256(data))
}

// ParseID parses the 64-digit lower- or upper-case hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != hex.EncodedLen(IDSize) {
		return id, fmt.Errorf("%w: %q has %d characters, want %d", ErrInvalidID, s, len(s), hex.EncodedLen(IDSize))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: %q: %v", ErrInvalidID, s, err)
	}
	return id, nil
}

// String returns the full lower-case hex form of id.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Str returns a short prefix of id for log lines and error messages.
func (id ID) Str() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes id as hex, so IDs read well in JSON.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(IDSize))
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText parses the hex form written by MarshalText.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// HashReader returns the ID of everything r yields, streaming: for whole
// objects (packs) that should not be held in memory to be checked.
func HashReader(r io.Reader) (ID, error) {
	h := blake3.New()
	if _, err := io.Copy(h, r); err != nil {
		return ID{}, err
	}
	var id ID
	h.Sum(id[:0])
	return id, nil
}
