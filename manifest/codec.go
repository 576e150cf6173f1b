package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/sandsnap/sandsnap/chunk"
)

// minNodeLen is the fewest bytes one encoded node takes (a FIFO with a
// one-byte name and every number below 128): name length, name, type, mode,
// uid, gid, mtime, xattr count. DecodeTree checks counts against it before
// it allocates.
const minNodeLen = 8

// minXattrLen is the fewest bytes one encoded xattr takes: name length,
// one-byte name, value length.
const minXattrLen = 3

// Encode returns the deterministic encoding of t (version byte first):
// equal trees encode to equal bytes, so an unchanged directory has the same
// ID in every snapshot. It validates t (names, order, types, fields).
// The format is in FORMAT.md.
func (t *Tree) Encode() ([]byte, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil tree", ErrInvalid)
	}
	size := 1 + uvarintLen(uint64(len(t.Nodes)))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if err := validateNode(i, n, prevName(t.Nodes, i)); err != nil {
			return nil, err
		}
		size += encodedLen(n)
	}
	b := make([]byte, 0, size)
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for i := range t.Nodes {
		b = appendNode(b, &t.Nodes[i])
	}
	return b, nil
}

func prevName(nodes []Node, i int) string {
	if i == 0 {
		return ""
	}
	return nodes[i-1].Name
}

// encodedLen is n's exact encoded length, so that Encode allocates once
// and no more than it needs.
func encodedLen(n *Node) int {
	l := strLen(n.Name) + 1 + uvarintLen(uint64(n.Mode)) + uvarintLen(uint64(n.UID)) +
		uvarintLen(uint64(n.GID)) + uvarintLen(zigzag(n.MtimeNs))
	switch n.Type {
	case TypeFile:
		l += uvarintLen(n.Size) + uvarintLen(uint64(len(n.Content))) + len(n.Content)*chunk.IDSize + uvarintLen(n.LinkID)
	case TypeDir:
		l += chunk.IDSize
	case TypeSymlink:
		l += strLen(n.Target)
	}
	l += uvarintLen(uint64(len(n.Xattrs)))
	for _, x := range n.Xattrs {
		l += strLen(x.Name) + uvarintLen(uint64(len(x.Value))) + len(x.Value)
	}
	return l
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func appendNode(b []byte, n *Node) []byte {
	b = appendString(b, n.Name)
	b = append(b, byte(n.Type))
	b = binary.AppendUvarint(b, uint64(n.Mode))
	b = binary.AppendUvarint(b, uint64(n.UID))
	b = binary.AppendUvarint(b, uint64(n.GID))
	b = binary.AppendVarint(b, n.MtimeNs)
	switch n.Type {
	case TypeFile:
		b = binary.AppendUvarint(b, n.Size)
		b = binary.AppendUvarint(b, uint64(len(n.Content)))
		for _, id := range n.Content {
			b = append(b, id[:]...)
		}
		b = binary.AppendUvarint(b, n.LinkID)
	case TypeDir:
		b = append(b, n.Subtree[:]...)
	case TypeSymlink:
		b = appendString(b, n.Target)
	}
	b = binary.AppendUvarint(b, uint64(len(n.Xattrs)))
	for _, x := range n.Xattrs {
		b = appendString(b, x.Name)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeTree decodes and validates a tree blob. Arbitrary input never
// panics and never allocates more than a small multiple of len(data)
// (about 20x for a worst case of tiny FIFO entries, 2-3x for real trees).
// It accepts exactly the encodings that Encode produces: for every
// accepted data, Encode of the result returns data again.
//
// The result does not alias data. All names and targets of one tree share
// one backing string, and all chunk IDs one backing array, so a decoded tree
// costs a few allocations, not a few per node. Empty slices decode as nil.
func DecodeTree(data []byte) (*Tree, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty tree blob", ErrCorrupt)
	}
	if data[0] != Version {
		return nil, fmt.Errorf("%w: tree version %d, want %d", ErrVersion, data[0], Version)
	}
	d := decoder{data: data, str: string(data), pos: 1}
	count, err := d.count(minNodeLen, "entry count")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	t := &Tree{}
	if count > 0 {
		t.Nodes = make([]Node, count)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if err := d.node(n); err != nil {
			return nil, fmt.Errorf("%w: entry %d %q: %w", ErrCorrupt, i, n.Name, err)
		}
		if err := validateNode(i, n, prevName(t.Nodes, i)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if d.pos != len(data) {
		return nil, fmt.Errorf("%w: %d trailing bytes after %d entries", ErrCorrupt, len(data)-d.pos, count)
	}
	return t, nil
}

// errShort is wrapped into ErrCorrupt by DecodeTree.
var errShort = errors.New("truncated")

// decoder reads one tree blob. str is data as one string, so that names
// and targets are substrings of a single allocation; ids is a slab that
// every file's Content is cut from.
type decoder struct {
	data []byte
	str  string
	pos  int
	ids  []chunk.ID
}

func (d *decoder) remaining() int { return len(d.data) - d.pos }

// uvarint reads a minimally encoded uvarint. Non-minimal forms (a last
// byte of 0x00 after continuation bytes) are refused, so that every number
// has exactly one encoding and re-encoding a decoded tree gives its bytes.
func (d *decoder) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.data[d.pos:])
	switch {
	case n == 0:
		return 0, fmt.Errorf("%s: %w", what, errShort)
	case n < 0:
		return 0, fmt.Errorf("%s: varint overflows 64 bits", what)
	case n > 1 && d.data[d.pos+n-1] == 0:
		return 0, fmt.Errorf("%s: varint not minimally encoded", what)
	}
	d.pos += n
	return v, nil
}

func (d *decoder) varint(what string) (int64, error) {
	u, err := d.uvarint(what)
	// Zigzag, as binary.Varint decodes it; minimality carries over.
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, err
}

func (d *decoder) uint32(what string) (uint32, error) {
	v, err := d.uvarint(what)
	if err == nil && v > math.MaxUint32 {
		err = fmt.Errorf("%s: %d exceeds 32 bits", what, v)
	}
	return uint32(v), err
}

// count reads a count of items that each take at least minLen bytes, and
// refuses one that the remaining bytes cannot hold, before anything is
// allocated for it.
func (d *decoder) count(minLen int, what string) (int, error) {
	v, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if v > uint64(d.remaining()/minLen) {
		return 0, fmt.Errorf("%s %d: %w (%d bytes left)", what, v, errShort, d.remaining())
	}
	return int(v), nil
}

// string reads a length-prefixed string of at most max bytes.
func (d *decoder) string(max int, what string) (string, error) {
	l, err := d.uvarint(what)
	if err != nil {
		return "", err
	}
	if l > uint64(max) {
		return "", fmt.Errorf("%s of %d bytes, limit %d", what, l, max)
	}
	if l > uint64(d.remaining()) {
		return "", fmt.Errorf("%s of %d bytes: %w", what, l, errShort)
	}
	s := d.str[d.pos : d.pos+int(l)]
	d.pos += int(l)
	return s, nil
}

func (d *decoder) id(dst *chunk.ID) {
	copy(dst[:], d.data[d.pos:d.pos+chunk.IDSize])
	d.pos += chunk.IDSize
}

// node reads one node's fields; validateNode checks them afterwards.
func (d *decoder) node(n *Node) error {
	var err error
	// Names longer than NAME_MAX are read anyway so that ValidName reports
	// them as ErrBadName; the length is still checked against the input.
	if n.Name, err = d.string(len(d.data), "name"); err != nil {
		return err
	}
	if d.remaining() < 1 {
		return fmt.Errorf("type: %w", errShort)
	}
	n.Type = NodeType(d.data[d.pos])
	d.pos++
	if n.Mode, err = d.uint32("mode"); err != nil {
		return err
	}
	if n.UID, err = d.uint32("uid"); err != nil {
		return err
	}
	if n.GID, err = d.uint32("gid"); err != nil {
		return err
	}
	if n.MtimeNs, err = d.varint("mtime"); err != nil {
		return err
	}
	switch n.Type {
	case TypeFile:
		if err := d.file(n); err != nil {
			return err
		}
	case TypeDir:
		if d.remaining() < chunk.IDSize {
			return fmt.Errorf("subtree: %w", errShort)
		}
		d.id(&n.Subtree)
	case TypeSymlink:
		if n.Target, err = d.string(MaxTargetLen, "symlink target"); err != nil {
			return err
		}
	case TypeFIFO:
	default:
		return fmt.Errorf("%w: unknown type %d", ErrInvalid, uint8(n.Type))
	}
	return d.xattrs(n)
}

func (d *decoder) file(n *Node) error {
	var err error
	if n.Size, err = d.uvarint("size"); err != nil {
		return err
	}
	count, err := d.count(chunk.IDSize, "chunk count")
	if err != nil {
		return err
	}
	if count > 0 {
		if cap(d.ids)-len(d.ids) < count {
			// Every chunk ID still to come fits in the rest of the input,
			// so one slab of that size serves the whole tree and costs at
			// most len(data) bytes.
			d.ids = make([]chunk.ID, 0, d.remaining()/chunk.IDSize)
		}
		start := len(d.ids)
		d.ids = d.ids[:start+count]
		for i := start; i < start+count; i++ {
			d.id(&d.ids[i])
		}
		// A full slice expression, so that appending to one file's Content
		// never overwrites the next file's.
		n.Content = d.ids[start : start+count : start+count]
	}
	n.LinkID, err = d.uvarint("link ID")
	return err
}

func (d *decoder) xattrs(n *Node) error {
	count, err := d.count(minXattrLen, "xattr count")
	if err != nil || count == 0 {
		return err
	}
	n.Xattrs = make([]Xattr, count)
	for i := range n.Xattrs {
		x := &n.Xattrs[i]
		if x.Name, err = d.string(MaxXattrNameLen, "xattr name"); err != nil {
			return err
		}
		v, err := d.string(MaxXattrValueLen, "xattr value")
		if err != nil {
			return fmt.Errorf("xattr %q: %w", x.Name, err)
		}
		if v != "" {
			x.Value = []byte(v)
		}
	}
	return nil
}
