package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Target policy. A restore makes its target identical to the snapshot,
// removing whatever the snapshot lacks, so Restore decides first whether
// the target may be made so, before anything is touched, on the target
// resolved once (resolveTarget); every later step uses that resolved path.
//
//   - The root, system directories and the restoring user's home are
//     refused whatever the options say (systemDirs).
//   - A non-empty directory is made identical only when sandsnap restored
//     or backed it up on this host before (it has a files cache, so the
//     files there were sandsnap's), when it holds the marker of an
//     unfinished restore (its contents are neither the old state nor the
//     snapshot's anyway), or with RestoreOptions.Delete. Without a cache
//     folder (Options.CacheDir "", the CLI's --no-cache) there is no
//     record, so such restores need Delete.

// dirRule is one entry of the system list: a directory (an element may be
// a path.Match pattern, as in /usr/lib*) refused as a restore target.
type dirRule struct {
	path  string // absolute, slash-separated
	below bool   // everything below it is refused too
	why   string
}

// systemDirs are the directories a restore never makes identical to a
// snapshot. Directories below which a sandbox's work commonly lives are
// refused themselves only: /home, /tmp, /var/tmp, /srv, /opt, /usr/src
// (Docker images use /usr/src/app), /workspace and /app are not listed.
var systemDirs = []dirRule{
	{"/", false, "the root of the filesystem"},
	{"/bin", true, "the system's programs"},
	{"/sbin", true, "the system's programs"},
	{"/usr/bin", true, "the system's programs"},
	{"/usr/sbin", true, "the system's programs"},
	{"/usr/libexec", true, "the system's programs"},
	{"/lib*", true, "the system's libraries"},
	{"/usr/lib*", true, "the system's libraries"},
	{"/usr/include", true, "files of installed packages"},
	{"/usr/share", true, "files of installed packages"},
	{"/boot", true, "the kernel and boot loader"},
	{"/etc", true, "the system's configuration"},
	{"/dev", true, "a kernel filesystem"},
	{"/proc", true, "a kernel filesystem"},
	{"/sys", true, "a kernel filesystem"},
	{"/run", true, "runtime state of running programs"},
	{"/home", false, "the parent of every user's home directory"},
	{"/root", false, "the root user's home directory"},
	{"/media", false, "where other filesystems are mounted"},
	{"/mnt", false, "where other filesystems are mounted"},
	{"/opt", false, "where optional software is installed"},
	{"/srv", false, "the data this host serves"},
	{"/tmp", false, "shared by every user and program"},
	{"/var/tmp", false, "shared by every user and program"},
	{"/usr", false, "part of the system hierarchy"},
	{"/usr/local", false, "part of the system hierarchy"},
	{"/var", false, "part of the system hierarchy"},
	{"/var/lib", false, "the state of installed programs"},
	{"/var/log", false, "the system's logs"},
	{"/var/cache", false, "the caches of installed programs"},
}

// targetPolicy is what the system check compares a target with. The zero
// value is the real system: in-package tests point root at a fake one.
type targetPolicy struct {
	root string // the system's root directory; "" is "/"
	home string // the restoring user's home; "" is $HOME
}

// restoreTarget is a restore target as the policy found it.
type restoreTarget struct {
	dir  string // as the caller named it, for messages
	abs  string // filepath.Abs(dir): the key of its files cache
	path string // abs with the symlinks of its deepest existing ancestor resolved
	// exists: path is a directory (a target that is anything else is
	// refused); empty: it has no entries.
	exists, empty bool
	// marker is an unfinished restore's marker found in it, or nil.
	marker *restoreMarker
}

// String names the target for messages: as given, and resolved when that
// differs.
func (t *restoreTarget) String() string {
	if t.path != t.abs {
		return fmt.Sprintf("%s (%s)", t.dir, t.path)
	}
	return t.dir
}

// checkTarget resolves dir and applies the target policy: it returns
// ErrTargetRefused (one line naming the target and why), ErrNotDir, or
// the target's state. It reads the target but changes nothing.
func (r *Repository) checkTarget(dir string, opts RestoreOptions) (*restoreTarget, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repo: restore target %s: %w", dir, err)
	}
	resolved, err := resolveTarget(abs)
	if err != nil {
		return nil, fmt.Errorf("repo: restore target %s: %w", dir, err)
	}
	t := &restoreTarget{dir: dir, abs: abs, path: resolved}
	if why := opts.policy.refuses(resolved); why != "" {
		return nil, fmt.Errorf("%w: %s is %s; restore into a directory below it", ErrTargetRefused, t, why)
	}
	fi, err := os.Lstat(resolved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("repo: restore target %s: %w", t, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("repo: restore target %s: %w", t, ErrNotDir)
	}
	t.exists = true
	if t.empty, err = emptyDir(resolved); err != nil {
		return nil, fmt.Errorf("repo: restore target %s: %w", t, err)
	}
	if t.empty {
		return t, nil
	}
	if t.marker, err = readMarker(resolved); err != nil {
		r.opts.Logf("restore target %s: %v", t, err) // still a marker
	}
	if t.marker != nil || opts.Delete || r.hasFilesCache(abs, resolved) {
		return t, nil
	}
	why := "sandsnap has not restored or backed it up on this host"
	if r.opts.CacheDir == "" {
		why = "without a cache folder sandsnap has no record of restoring it"
	}
	return nil, fmt.Errorf("%w: %s is not empty, and %s; restore into an empty directory, or pass --delete (RestoreOptions.Delete) to make it identical to the snapshot, removing what the snapshot lacks",
		ErrTargetRefused, t, why)
}

// resolveTarget returns abs with every symlink of its deepest existing
// ancestor resolved, and the missing rest appended.
func resolveTarget(abs string) (string, error) {
	var rest []string
	for p := abs; ; {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{resolved}, rest...)...), nil
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, fs.ErrNotExist) || parent == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// emptyDir reports whether the directory dir has no entries.
func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// hasFilesCache reports whether sandsnap keeps a files cache for the
// directory, under either of its names.
func (r *Repository) hasFilesCache(names ...string) bool {
	for _, n := range names {
		if p := r.filesCachePath(n); p != "" {
			if _, err := os.Stat(p); err == nil {
				return true
			}
		}
	}
	return false
}

// refuses returns why the resolved target may not be restored into, or
// "" if it may. A listed directory that is itself a symlink (/lib to
// usr/lib) is refused under its resolved name too.
func (p targetPolicy) refuses(target string) string {
	root := p.root
	if root == "" {
		root = "/"
	}
	rel, ok := underRoot(root, target)
	if !ok {
		return ""
	}
	for _, d := range systemDirs {
		if d.matches(rel) {
			return d.why
		}
		if strings.ContainsAny(d.path, "*?[") {
			continue
		}
		real, err := filepath.EvalSymlinks(filepath.Join(root, d.path))
		if err != nil {
			continue
		}
		if rrel, ok := underRoot(root, real); ok && rrel != d.path && (dirRule{rrel, d.below, d.why}).matches(rel) {
			return d.why
		}
	}
	if home := p.homeDir(); home != "" && target == home {
		return "your home directory"
	}
	return ""
}

// homeDir returns the restoring user's home directory, resolved, or "".
func (p targetPolicy) homeDir() string {
	home := p.home
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = h
	}
	if real, err := filepath.EvalSymlinks(home); err == nil {
		return real
	}
	return filepath.Clean(home)
}

// underRoot returns target as an absolute slash path relative to root.
func underRoot(root, target string) (string, bool) {
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return path.Join("/", filepath.ToSlash(rel)), true
}

// matches reports whether the rule refuses the slash path rel.
func (d dirRule) matches(rel string) bool {
	want, got := splitAbs(d.path), splitAbs(rel)
	if len(got) < len(want) || (!d.below && len(got) != len(want)) {
		return false
	}
	for i, w := range want {
		if ok, _ := path.Match(w, got[i]); !ok {
			return false
		}
	}
	return true
}

// splitAbs splits an absolute slash path into its elements ("/" has none).
func splitAbs(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
