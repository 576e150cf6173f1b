package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sandsnap/sandsnap/chunk"
)

// Version is the tree and snapshot format version.
const Version = 1

// Sentinel errors. Every error that DecodeTree returns for bad input matches
// ErrCorrupt (or ErrVersion), and also the more precise ErrBadName,
// ErrUnsorted or ErrInvalid when one applies; Encode returns the precise one.
var (
	ErrCorrupt  = errors.New("manifest: corrupt")
	ErrVersion  = errors.New("manifest: unsupported version")
	ErrBadName  = errors.New("manifest: invalid entry name") // "", ".", "..", "/" or NUL inside, > 255 bytes
	ErrUnsorted = errors.New("manifest: entries not sorted or not unique")
	// ErrInvalid is a node or snapshot field that breaks a rule other than
	// a name's: unknown type, a field that does not apply to the type, a
	// zero subtree, a bad symlink target or xattr, an expiry before creation.
	ErrInvalid = errors.New("manifest: invalid field")
)

// Limits taken from Linux, so that every directory a Linux host can hold
// can be stored, and nothing that it could not restore is accepted.
const (
	MaxNameLen       = 255     // NAME_MAX
	MaxTargetLen     = 4095    // PATH_MAX - 1: symlink(2) refuses longer targets
	MaxXattrNameLen  = 255     // XATTR_NAME_MAX
	MaxXattrValueLen = 1 << 16 // XATTR_SIZE_MAX
)

// maxMode is the largest Node.Mode: permission bits plus setuid, setgid
// and sticky. The file type lives in Node.Type, never in Mode.
const maxMode = 0o7777

// NodeType is the kind of a directory entry.
type NodeType uint8

const (
	TypeFile    NodeType = 1
	TypeDir     NodeType = 2
	TypeSymlink NodeType = 3
	TypeFIFO    NodeType = 4
)

// String returns "file", "dir", "symlink", "fifo" or "type(N)".
func (t NodeType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Xattr is one extended attribute (user.* namespace).
type Xattr struct {
	Name  string
	Value []byte
}

// Node is one directory entry. Fields that do not apply to Type are zero.
type Node struct {
	Name    string // one path element: any bytes but "/" and NUL; not "." or ".."
	Type    NodeType
	Mode    uint32 // permission bits plus setuid, setgid, sticky (st_mode & 07777)
	UID     uint32
	GID     uint32
	MtimeNs int64      // Unix time in nanoseconds
	Size    uint64     // files: length in bytes
	Content []chunk.ID // files: chunk IDs in order (empty file: none)
	Subtree chunk.ID   // dirs: the tree blob's ID
	Target  string     // symlinks: target, any bytes but NUL, never followed
	LinkID  uint64     // files with nlink > 1: the same nonzero value for every
	//                    name of one inode within a snapshot; 0 otherwise
	Xattrs []Xattr // sorted by Name, unique
}

// Equal reports whether n and m encode to the same bytes: every field is
// equal, and a nil slice equals an empty one.
func (n *Node) Equal(m *Node) bool {
	return n.Subtree == m.Subtree && n.equalMeta(m)
}

// equalMeta is Equal without Subtree: what Diff calls a directory's own
// change, as opposed to a change somewhere below it.
func (n *Node) equalMeta(m *Node) bool {
	return n.Name == m.Name && n.Type == m.Type && n.Mode == m.Mode &&
		n.UID == m.UID && n.GID == m.GID && n.MtimeNs == m.MtimeNs &&
		n.Size == m.Size && n.Target == m.Target && n.LinkID == m.LinkID &&
		slices.Equal(n.Content, m.Content) &&
		slices.EqualFunc(n.Xattrs, m.Xattrs, func(a, b Xattr) bool {
			return a.Name == b.Name && string(a.Value) == string(b.Value)
		})
}

// Tree is one directory's entries, sorted by Name (bytewise), names unique.
type Tree struct {
	Nodes []Node
}

// Sort puts t.Nodes in the order Encode requires (bytewise by Name) and
// sorts each node's Xattrs by Name. Duplicates are left for Encode to refuse.
func (t *Tree) Sort() {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range t.Nodes {
		slices.SortFunc(t.Nodes[i].Xattrs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	}
}

// Find returns the node called name by binary search; t must be sorted.
// The pointer aliases t.Nodes.
func (t *Tree) Find(name string) (*Node, bool) {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n Node, name string) int {
		return strings.Compare(n.Name, name)
	})
	if !ok {
		return nil, false
	}
	return &t.Nodes[i], true
}

// ValidName reports whether name can be a Node name (ErrBadName otherwise):
// not "", "." or "..", no "/" or NUL, at most 255 bytes. Any other bytes are
// allowed, newlines and invalid UTF-8 included, because Linux allows them.
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrBadName, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadName, len(name), MaxNameLen)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("%w: %q contains '/'", ErrBadName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q contains NUL", ErrBadName, name)
	}
	return nil
}

// validate checks everything about n except its name and its place in the
// tree; Encode and DecodeTree share it, so they accept the same nodes.
func (n *Node) validate() error {
	if n.Mode > maxMode {
		return fmt.Errorf("%w: mode %#o has bits outside 07777", ErrInvalid, n.Mode)
	}
	switch n.Type {
	case TypeFile:
		if n.Subtree != (chunk.ID{}) || n.Target != "" {
			return fmt.Errorf("%w: file with a subtree or target", ErrInvalid)
		}
		for i, id := range n.Content {
			if id.IsZero() {
				return fmt.Errorf("%w: file chunk %d is the zero ID", ErrInvalid, i)
			}
		}
	case TypeDir:
		if n.Subtree.IsZero() {
			return fmt.Errorf("%w: directory without a subtree", ErrInvalid)
		}
		if n.Size != 0 || len(n.Content) != 0 || n.Target != "" || n.LinkID != 0 {
			return fmt.Errorf("%w: directory with size, content, target or link ID", ErrInvalid)
		}
	case TypeSymlink:
		if err := validTarget(n.Target); err != nil {
			return err
		}
		if n.Size != 0 || len(n.Content) != 0 || !n.Subtree.IsZero() || n.LinkID != 0 {
			return fmt.Errorf("%w: symlink with size, content, subtree or link ID", ErrInvalid)
		}
	case TypeFIFO:
		if n.Size != 0 || len(n.Content) != 0 || !n.Subtree.IsZero() || n.Target != "" || n.LinkID != 0 {
			return fmt.Errorf("%w: fifo with size, content, subtree, target or link ID", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown type %d", ErrInvalid, uint8(n.Type))
	}
	for i := range n.Xattrs {
		x := &n.Xattrs[i]
		if err := validXattr(x); err != nil {
			return err
		}
		if i > 0 && n.Xattrs[i-1].Name >= x.Name {
			return fmt.Errorf("%w: xattr %q after %q", ErrUnsorted, x.Name, n.Xattrs[i-1].Name)
		}
	}
	return nil
}

func validTarget(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty symlink target", ErrInvalid)
	case len(t) > MaxTargetLen:
		return fmt.Errorf("%w: symlink target of %d bytes, limit %d", ErrInvalid, len(t), MaxTargetLen)
	case strings.IndexByte(t, 0) >= 0:
		return fmt.Errorf("%w: symlink target %q contains NUL", ErrInvalid, t)
	}
	return nil
}

func validXattr(x *Xattr) error {
	switch {
	case x.Name == "":
		return fmt.Errorf("%w: empty xattr name", ErrInvalid)
	case len(x.Name) > MaxXattrNameLen:
		return fmt.Errorf("%w: xattr name of %d bytes, limit %d", ErrInvalid, len(x.Name), MaxXattrNameLen)
	case strings.IndexByte(x.Name, 0) >= 0:
		return fmt.Errorf("%w: xattr name %q contains NUL", ErrInvalid, x.Name)
	case len(x.Value) > MaxXattrValueLen:
		return fmt.Errorf("%w: xattr %q value of %d bytes, limit %d", ErrInvalid, x.Name, len(x.Value), MaxXattrValueLen)
	}
	return nil
}

// validateNode checks the node at index i of a tree whose previous name is
// prev; the error names the entry.
func validateNode(i int, n *Node, prev string) error {
	if err := ValidName(n.Name); err != nil {
		return fmt.Errorf("entry %d: %w", i, err)
	}
	if i > 0 && n.Name <= prev {
		return fmt.Errorf("%w: entry %d %q after %q", ErrUnsorted, i, n.Name, prev)
	}
	if err := n.validate(); err != nil {
		return fmt.Errorf("entry %d %q (%v): %w", i, n.Name, n.Type, err)
	}
	return nil
}
