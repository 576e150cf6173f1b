package repo

import (
	"encoding/binary"
	"testing"
)

func aclBytes(version uint32, entries ...[2]uint16) []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e[0])
		b = binary.LittleEndian.AppendUint16(b, e[1])
		b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	}
	return b
}

// TestACLGroupPerm: what an access ACL grants the owning group, and the
// narrowed mode of an entry whose ACL is not set. Anything that is not a
// well-formed ACL grants nothing, and narrowing never adds a bit.
func TestACLGroupPerm(t *testing.T) {
	const user, group, mask, other = 0x01, 0x04, 0x10, 0x20
	tests := []struct {
		name string
		acl  []byte
		mode uint32
		want uint32 // narrowed mode
	}{
		{"group r-- mask rw-", aclBytes(2, [2]uint16{user, 6}, [2]uint16{group, 4}, [2]uint16{mask, 6}, [2]uint16{other, 0}), 0o660, 0o640},
		{"group rwx mask r-x", aclBytes(2, [2]uint16{user, 7}, [2]uint16{group, 7}, [2]uint16{mask, 5}, [2]uint16{other, 5}), 0o2775, 0o2755},
		{"no mask", aclBytes(2, [2]uint16{user, 6}, [2]uint16{group, 6}, [2]uint16{other, 4}), 0o664, 0o664},
		{"mode narrower than the ACL", aclBytes(2, [2]uint16{group, 7}, [2]uint16{mask, 7}), 0o700, 0o700},
		{"perm bits above rwx", aclBytes(2, [2]uint16{group, 0xfff4}, [2]uint16{mask, 0xffff}), 0o777, 0o747},
		{"no group entry", aclBytes(2, [2]uint16{user, 7}, [2]uint16{mask, 7}), 0o775, 0o705},
		{"version 1", aclBytes(1, [2]uint16{group, 7}), 0o777, 0o707},
		{"truncated entry", aclBytes(2, [2]uint16{group, 7})[:9], 0o777, 0o707},
		{"empty", nil, 0o4770, 0o4700},
	}
	for _, tt := range tests {
		if got := narrowGroup(tt.mode, tt.acl); got != tt.want {
			t.Errorf("%s: narrowGroup(%#o) = %#o; want %#o", tt.name, tt.mode, got, tt.want)
		}
	}
	for p, want := range []string{"---", "--x", "-w-", "-wx", "r--", "r-x", "rw-", "rwx"} {
		if got := permString(uint32(p)); got != want {
			t.Errorf("permString(%d) = %q; want %q", p, got, want)
		}
	}
}
