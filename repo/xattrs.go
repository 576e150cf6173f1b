package repo

import "strings"

// Extended attributes a snapshot carries. user.* is the sandbox's own
// metadata. POSIX ACLs (system.posix_acl_*) and file capabilities
// (security.capability) are part of what a file permits: tar --acls
// --xattrs keeps them, and dropping an ACL while restoring its mask as the
// group bits would widen what the owning group may do. Other namespaces
// (trusted.*, security.selinux, ...) belong to the host that labelled the
// file, not to the content, and are neither saved nor restored.
const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
	xattrCapability = "security.capability"
)

// storedXattr reports whether a backup records the xattr name.
func storedXattr(name string) bool {
	switch name {
	case xattrACLAccess, xattrACLDefault, xattrCapability:
		return true
	}
	return strings.HasPrefix(name, "user.")
}
