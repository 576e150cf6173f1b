package repo

import "encoding/binary"

// The value of system.posix_acl_access and system.posix_acl_default, as
// the kernel stores and returns it (include/uapi/linux/posix_acl_xattr.h):
// a 4-byte version (2), then 8-byte entries {tag u16, perm u16, id u32},
// all little-endian.
const (
	aclVersion   = 2
	aclHeaderLen = 4
	aclEntryLen  = 8

	aclGroupObj = 0x04 // ACL_GROUP_OBJ: the owning group
	aclMask     = 0x10 // ACL_MASK: the most any group or named entry gets
)

// aclGroupPerm returns what an access ACL grants the owning group:
// group_obj & mask (group_obj alone without a mask), as rwx bits. A value
// that is not a well-formed ACL grants nothing.
func aclGroupPerm(v []byte) uint32 {
	if len(v) < aclHeaderLen || (len(v)-aclHeaderLen)%aclEntryLen != 0 ||
		binary.LittleEndian.Uint32(v) != aclVersion {
		return 0
	}
	group, mask := uint32(0), uint32(7)
	seenGroup := false
	for e := v[aclHeaderLen:]; len(e) > 0; e = e[aclEntryLen:] {
		perm := uint32(binary.LittleEndian.Uint16(e[2:])) & 7
		switch binary.LittleEndian.Uint16(e) {
		case aclGroupObj:
			group, seenGroup = perm, true
		case aclMask:
			mask = perm
		}
	}
	if !seenGroup {
		return 0
	}
	return group & mask
}

// narrowGroup takes from mode's group bits (which hold an access ACL's
// mask) whatever the ACL did not grant the owning group, for an entry
// whose ACL is not set: the named users and groups it listed lose their
// access, and the owning group keeps no more than it had.
func narrowGroup(mode uint32, acl []byte) uint32 {
	return mode &^ (0o070 &^ (aclGroupPerm(acl) << 3))
}

// permString formats rwx bits as "r-x".
func permString(p uint32) string {
	b := []byte("---")
	for i, c := range "rwx" {
		if p&(4>>i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}
