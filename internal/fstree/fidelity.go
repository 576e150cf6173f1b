package fstree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLargeSize is the size of the fidelity tree's large file when
// FidelityOptions.LargeSize is zero.
const DefaultLargeSize = 64 << 20

// Owner and group given to the owned entries of a fidelity tree built by
// root.
const (
	FidelityUID = 1234
	FidelityGID = 5678
)

// FidelityOptions configures BuildFidelity. The zero value is a fine default.
type FidelityOptions struct {
	// Seed makes the contents and mtimes; the same seed builds the same tree.
	Seed uint64
	// LargeSize is the size of files/large.bin; zero means DefaultLargeSize.
	LargeSize int64
	// Special adds a unix socket and (as root) a character device, entries a
	// snapshot is expected to skip; their paths go to Report.Skipped.
	Special bool
}

// Report describes a tree built by BuildFidelity.
type Report struct {
	Files   int      // non-directory names created (each hard-link name counts)
	Bytes   int64    // apparent size of the regular files, each inode once
	Skipped []string // relative paths a snapshot is expected to skip
	Sparse  []string // relative paths of the sparse files
	Notes   []string // cases left out and why (not root, no xattr support...)
}

// ErrExists is returned by BuildFidelity when its target is not empty.
var ErrExists = errors.New("fstree: target directory is not empty")

// BuildFidelity creates, under dir (created if needed, and required to be
// empty), a tree that holds every case listed in the package documentation.
// Directories' mtimes are set last, bottom-up, so the tree is stat-identical
// each time it is built from the same options (inode numbers aside).
func BuildFidelity(dir string, opts FidelityOptions) (Report, error) {
	if opts.LargeSize == 0 {
		opts.LargeSize = DefaultLargeSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Report{}, fmt.Errorf("fstree: %w", err)
	}
	if des, err := os.ReadDir(dir); err != nil {
		return Report{}, fmt.Errorf("fstree: %w", err)
	} else if len(des) > 0 {
		return Report{}, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	b := &builder{
		root:  dir,
		rng:   rand.New(rand.NewPCG(opts.Seed, 0x5a4d5a4d)),
		root0: os.Geteuid() == 0,
		modes: map[string]uint32{},
	}
	steps := []func() error{
		b.files,
		func() error { return b.large(opts.LargeSize) },
		b.dirs,
		b.symlinks,
		b.hardlinks,
		b.perms,
		b.owners,
		b.xattrs,
		b.names,
		b.sparse,
		b.fifo,
	}
	if opts.Special {
		steps = append(steps, b.special)
	}
	steps = append(steps, b.applyModes, b.mtimes)
	for _, step := range steps {
		if err := step(); err != nil {
			return b.rep, err
		}
	}
	slices.Sort(b.rep.Skipped)
	return b.rep, nil
}

// builder holds the state of one BuildFidelity call.
type builder struct {
	root  string
	rng   *rand.Rand
	root0 bool // running as root: owners and device nodes are possible
	rep   Report
	// modes are applied after every entry exists and has its owner, since
	// chown clears setuid and a read-only directory refuses new entries.
	modes map[string]uint32
	order []string // keys of modes in insertion order
}

func (b *builder) abs(rel string) string { return filepath.Join(b.root, filepath.FromSlash(rel)) }

func (b *builder) setMode(rel string, m uint32) {
	if _, ok := b.modes[rel]; !ok {
		b.order = append(b.order, rel)
	}
	b.modes[rel] = m
}

func (b *builder) mkdir(rel string) error {
	p := b.abs(rel)
	if err := os.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	// Chmod: the mode must not depend on the umask.
	if err := os.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	return nil
}

func (b *builder) write(rel string, data []byte) error {
	p := b.abs(rel)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fstree: write %s: %w", p, err)
	}
	b.rep.Files++
	b.rep.Bytes += int64(len(data))
	return nil
}

func (b *builder) random(n int) []byte {
	buf := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], b.rng.Uint64())
	}
	return buf[:n]
}

func (b *builder) files() error {
	if err := b.mkdir("files"); err != nil {
		return err
	}
	small := fmt.Appendf(nil, "hello, sandsnap\nseed line %d\n", b.rng.Uint64())
	for _, f := range []struct {
		rel  string
		data []byte
	}{
		{"files/empty", nil},
		{"files/small.txt", small},
		{"files/random-3MiB.bin", b.random(3 << 20)},
		{"files/old-mtime", []byte("before 1970\n")},
		{"files/future-mtime", []byte("after 2038\n")},
	} {
		if err := b.write(f.rel, f.data); err != nil {
			return err
		}
	}
	return nil
}

// large writes files/large.bin in pieces, so that a size of gigabytes does
// not need gigabytes of memory.
func (b *builder) large(size int64) error {
	p := b.abs("files/large.bin")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	buf := make([]byte, 4<<20)
	for left := size; left > 0 && err == nil; {
		n := min(left, int64(len(buf)))
		for i := 0; i < int(n); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], b.rng.Uint64())
		}
		_, err = f.Write(buf[:n])
		left -= n
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fstree: write %s: %w", p, err)
	}
	b.rep.Files++
	b.rep.Bytes += size
	return nil
}

// DeepLevels is the number of nested directories under deep/ in a fidelity
// tree; their path is longer than 1000 bytes.
const DeepLevels = 60

func (b *builder) dirs() error {
	for _, d := range []string{"dirs", "dirs/empty", "dirs/nested", "dirs/nested/inner", "deep"} {
		if err := b.mkdir(d); err != nil {
			return err
		}
	}
	rel := "deep"
	for i := range DeepLevels {
		rel += fmt.Sprintf("/level-%02d-abcdefghijk", i)
		if err := b.mkdir(rel); err != nil {
			return err
		}
	}
	if err := b.write(rel+"/bottom.txt", []byte("the bottom of a deep path\n")); err != nil {
		return err
	}
	return b.write("dirs/nested/inner/file.txt", []byte("nested\n"))
}

func (b *builder) symlink(target, rel string) error {
	if err := os.Symlink(target, b.abs(rel)); err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	b.rep.Files++
	return nil
}

func (b *builder) symlinks() error {
	if err := b.mkdir("links"); err != nil {
		return err
	}
	for _, l := range [][2]string{
		{"nowhere/at/all", "links/dangling"},
		{"../files/small.txt", "links/relative"},
		{"/etc/hostname", "links/absolute"},
		{"../dirs", "links/to-dir"},
		{"loop", "links/loop"},
	} {
		if err := b.symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) hardlinks() error {
	for _, d := range []string{"hardlinks", "hardlinks/a", "hardlinks/b"} {
		if err := b.mkdir(d); err != nil {
			return err
		}
	}
	if err := b.write("hardlinks/one", []byte("one inode, three names\n")); err != nil {
		return err
	}
	for _, rel := range []string{"hardlinks/a/two", "hardlinks/b/three"} {
		if err := os.Link(b.abs("hardlinks/one"), b.abs(rel)); err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		b.rep.Files++
	}
	return nil
}

func (b *builder) perms() error {
	for _, d := range []string{"perms", "perms/setgid-dir", "perms/sticky", "perms/readonly"} {
		if err := b.mkdir(d); err != nil {
			return err
		}
	}
	files := []string{"perms/setuid", "perms/setgid", "perms/private", "perms/setgid-dir/inside", "perms/readonly/inside"}
	for _, rel := range files {
		if err := b.write(rel, []byte("#!/bin/sh\necho "+rel+"\n")); err != nil {
			return err
		}
	}
	b.setMode("perms/setuid", 0o4755)
	b.setMode("perms/setgid", 0o2755)
	b.setMode("perms/private", 0o600)
	b.setMode("perms/setgid-dir", 0o2755)
	b.setMode("perms/sticky", 0o1777)
	b.setMode("perms/readonly", 0o555)
	if !b.root0 {
		b.rep.Notes = append(b.rep.Notes, "perms/zero: mode 0000 file left out: not running as root, it could not be read back")
		return nil
	}
	if err := b.write("perms/zero", []byte("nobody may read this but root\n")); err != nil {
		return err
	}
	b.setMode("perms/zero", 0)
	return nil
}

func (b *builder) owners() error {
	if !b.root0 {
		b.rep.Notes = append(b.rep.Notes, "owners/: left out: not running as root, chown is not possible")
		return nil
	}
	if err := b.mkdir("owners"); err != nil {
		return err
	}
	if err := b.mkdir("owners/dir"); err != nil {
		return err
	}
	for _, rel := range []string{"owners/file", "owners/setuid"} {
		if err := b.write(rel, []byte("owned by "+fmt.Sprint(FidelityUID)+"\n")); err != nil {
			return err
		}
	}
	if err := b.symlink("file", "owners/link"); err != nil {
		return err
	}
	for _, rel := range []string{"owners/dir", "owners/file", "owners/setuid", "owners/link"} {
		if err := os.Lchown(b.abs(rel), FidelityUID, FidelityGID); err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
	}
	// Set after the chown (which clears setuid): a restore must also set the
	// owner before the mode.
	b.setMode("owners/setuid", 0o4750)
	return nil
}

func (b *builder) xattrs() error {
	if err := b.mkdir("xattrs"); err != nil {
		return err
	}
	if err := b.mkdir("xattrs/dir"); err != nil {
		return err
	}
	if err := b.write("xattrs/file", []byte("a file with extended attributes\n")); err != nil {
		return err
	}
	attrs := []struct {
		rel, name string
		value     []byte
	}{
		{"xattrs/file", "user.comment", []byte("hello")},
		{"xattrs/file", "user.binary", []byte{0, 1, 2, 0xfe, 0xff, '\n', 0}},
		{"xattrs/file", "user.big", b.random(2000)},
		{"xattrs/dir", "user.dir", []byte("on a directory")},
	}
	for _, a := range attrs {
		err := unix.Lsetxattr(b.abs(a.rel), a.name, a.value, 0)
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("xattrs/: user.* attributes left out: %v", err))
			return nil
		}
		if err != nil {
			return fmt.Errorf("fstree: setxattr %s: %w", a.rel, err)
		}
	}
	return nil
}

// OddNames returns the names of the files under names/ in a fidelity tree.
func OddNames() []string {
	return slices.Clone(oddNames)
}

var oddNames = []string{
	"日本語",
	"with space",
	"new\nline",
	"tab\there",
	`back\slash`,
	strings.Repeat("é", 127) + "x", // 255 bytes, the longest name
	"bad-utf8-\xff\xfe\xc3",
	"-starts-with-dash",
	" leading space",
	"trailing-dot.",
	"quote\"'",
}

func (b *builder) names() error {
	if err := b.mkdir("names"); err != nil {
		return err
	}
	for _, n := range oddNames {
		if err := b.write("names/"+n, []byte(n+"\n")); err != nil {
			return err
		}
	}
	if err := b.mkdir("names/dir with 日本語"); err != nil {
		return err
	}
	return b.write("names/dir with 日本語/inside", []byte("inside\n"))
}

func (b *builder) sparse() error {
	if err := b.mkdir("sparse"); err != nil {
		return err
	}
	type region struct {
		off int64
		n   int
	}
	for _, s := range []struct {
		rel     string
		size    int64
		regions []region
	}{
		// Data at the start, an unaligned region, a 64 KiB region, and a
		// hole at the end.
		{"sparse/holes32", 32 << 20, []region{{0, 4096}, {10<<20 + 123, 5000}, {20 << 20, 64 << 10}}},
		{"sparse/zero16", 16 << 20, nil},
	} {
		p := b.abs(s.rel)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		err = f.Truncate(s.size)
		for _, r := range s.regions {
			if err == nil {
				_, err = f.WriteAt(b.random(r.n), r.off)
			}
		}
		if err == nil {
			err = f.Chmod(0o644)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fstree: write %s: %w", p, err)
		}
		b.rep.Files++
		b.rep.Bytes += s.size
		b.rep.Sparse = append(b.rep.Sparse, s.rel)
	}
	return nil
}

func (b *builder) fifo() error {
	if err := b.mkdir("fifos"); err != nil {
		return err
	}
	p := b.abs("fifos/fifo")
	if err := unix.Mkfifo(p, 0o644); err != nil {
		return fmt.Errorf("fstree: mkfifo %s: %w", p, err)
	}
	b.rep.Files++
	b.setMode("fifos/fifo", 0o640)
	return nil
}

// special creates a unix socket and a character device, the entries a
// snapshot skips with a warning.
func (b *builder) special() error {
	if err := b.mkdir("special"); err != nil {
		return err
	}
	sock := b.abs("special/socket")
	// sun_path holds 108 bytes, the terminating NUL included.
	if len(sock) > 107 {
		b.rep.Notes = append(b.rep.Notes, "special/socket: left out: path too long for a unix socket")
	} else {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		l.SetUnlinkOnClose(false)
		if err := l.Close(); err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		if err := os.Chmod(sock, 0o755); err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		b.rep.Files++
		b.rep.Skipped = append(b.rep.Skipped, "special/socket")
	}
	if !b.root0 {
		b.rep.Notes = append(b.rep.Notes, "special/null: device left out: not running as root")
		return nil
	}
	dev := b.abs("special/null")
	err := unix.Mknod(dev, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3)))
	if errors.Is(err, unix.EPERM) {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("special/null: device left out: %v", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("fstree: mknod %s: %w", dev, err)
	}
	if err := os.Chmod(dev, 0o644); err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	b.rep.Files++
	b.rep.Skipped = append(b.rep.Skipped, "special/null")
	return nil
}

func (b *builder) applyModes() error {
	for _, rel := range b.order {
		p := b.abs(rel)
		if err := unix.Chmod(p, b.modes[rel]); err != nil {
			return fmt.Errorf("fstree: chmod %s: %w", p, err)
		}
	}
	return nil
}

// fidelityEpoch is the base of the mtimes in a fidelity tree.
var fidelityEpoch = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// mtimes gives every entry a distinct nanosecond mtime, children before their
// directory so that nothing disturbs a directory's time once it is set.
func (b *builder) mtimes() error {
	var rels []string
	err := filepath.WalkDir(b.root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(b.root, p)
		rels = append(rels, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return fmt.Errorf("fstree: %w", err)
	}
	special := map[string]time.Time{
		"files/old-mtime":    time.Date(1960, 1, 1, 0, 0, 0, 123456789, time.UTC),
		"files/future-mtime": time.Date(2200, 1, 1, 0, 0, 0, 987654321, time.UTC),
	}
	times := make([]time.Time, len(rels))
	for i, rel := range rels {
		times[i] = fidelityEpoch.Add(time.Duration(i)*time.Hour + time.Duration(b.rng.Int64N(int64(time.Second))))
		if t, ok := special[rel]; ok {
			times[i] = t
		}
	}
	// WalkDir visits a directory before its contents: go backwards.
	for i := len(rels) - 1; i >= 0; i-- {
		// Not UnixNano: it overflows past 2262.
		ts := unix.Timespec{Sec: times[i].Unix(), Nsec: int64(times[i].Nanosecond())}
		p := b.abs(rels[i])
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("fstree: utimes %s: %w", p, err)
		}
	}
	return nil
}
