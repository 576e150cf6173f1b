package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/local"
	"github.com/sandsnap/sandsnap/store/mem"
)

// openFS opens snapshot id's FS and closes it when the test ends.
func openFS(t testing.TB, r *repo.Repository, id chunk.ID) *repo.SnapshotFS {
	t.Helper()
	fsys, err := r.FS(context.Background(), id)
	if err != nil {
		t.Fatalf("FS(%s): %v", id.Str(), err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// TestFSFidelity: the FS of a snapshot of the fidelity tree passes
// fstest.TestFS, and every entry it serves is what Restore writes.
func TestFSFidelity(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	rep, err := fstree.BuildFidelity(src, fstree.FidelityOptions{Seed: 11, LargeSize: 5 << 20, Special: true})
	mustDo(t, err)
	for _, n := range rep.Notes {
		t.Log("fidelity:", n)
	}
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := filepath.Join(t.TempDir(), "dst")
	restoreOK(t, r, h.ID, dst)
	sameAsRestored(t, openFS(t, r, h.ID), dst)

	// fstest.TestFS over the rest of the tree, odd names included, less
	// two kinds of entry: a name holding a backslash, which TestFS refuses
	// (a portability rule for Windows), and the files of megabytes (the
	// large, random and sparse ones), which it reads one to three bytes at
	// a time: minutes under the race detector, for bytes the comparison
	// above and TestFSReadAtRandom check already.
	expected := []string{"files/small.txt"} // the first name with a slash picks TestFS's fs.Sub check
	mustDo(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if err != nil || rel == "." || slices.Contains(rep.Skipped, rel) {
			return err
		}
		if fi, err := d.Info(); err == nil && (strings.Contains(rel, `\`) || fi.Mode().IsRegular() && fi.Size() > 256<<10) {
			return os.Remove(p)
		}
		expected = append(expected, filepath.ToSlash(rel))
		return nil
	}))
	h2 := backupOf(t, r, src, repo.BackupOptions{})
	if err := fstest.TestFS(openFS(t, r, h2.ID), expected...); err != nil {
		t.Fatal(err)
	}
}

// sameAsRestored walks fsys and compares every entry with the tree that a
// restore of the same snapshot wrote in dst: the same names, types, mode
// bits, owners, mtimes, sizes, symlink targets, user.* xattrs, file bytes
// and hard-link groups.
func sameAsRestored(t *testing.T, fsys fs.FS, dst string) {
	t.Helper()
	seen := map[string]bool{}
	inodeOf := map[uint64]uint64{} // LinkID -> restored inode
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		seen[p] = true
		host := filepath.Join(dst, filepath.FromSlash(p))
		var st unix.Stat_t
		mustDo(t, unix.Lstat(host, &st))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sys := fi.Sys().(*repo.NodeSys)
		if why := sameMeta(fi, sys, &st); why != "" {
			t.Errorf("%q: %s", p, why)
		}
		if sys.LinkID != 0 {
			if ino, ok := inodeOf[sys.LinkID]; ok && ino != st.Ino {
				t.Errorf("%q: link group %d spans two restored inodes", p, sys.LinkID)
			}
			inodeOf[sys.LinkID] = st.Ino
		} else if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink != 1 {
			t.Errorf("%q: no link group, but restored with %d links", p, st.Nlink)
		}
		if got, want := xattrsOf(sys), hostXattrs(t, host); !maps.Equal(got, want) {
			t.Errorf("%q: xattrs %q; restored %q", p, got, want)
		}
		return sameContent(fsys, p, fi, host)
	})
	mustDo(t, err)
	mustDo(t, filepath.WalkDir(dst, func(p string, _ fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dst, p)
		if err == nil && rel != "." && !seen[filepath.ToSlash(rel)] {
			t.Errorf("%q restored but not listed by the FS", rel)
		}
		return err
	}))
}

// sameMeta compares what the FS says of an entry with its restored lstat.
func sameMeta(fi fs.FileInfo, sys *repo.NodeSys, st *unix.Stat_t) string {
	types := map[uint32]fs.FileMode{unix.S_IFREG: 0, unix.S_IFDIR: fs.ModeDir, unix.S_IFLNK: fs.ModeSymlink, unix.S_IFIFO: fs.ModeNamedPipe}
	special := fi.Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	wantSpecial := fs.FileMode(0)
	for bit, m := range map[uint32]fs.FileMode{unix.S_ISUID: fs.ModeSetuid, unix.S_ISGID: fs.ModeSetgid, unix.S_ISVTX: fs.ModeSticky} {
		if st.Mode&bit != 0 {
			wantSpecial |= m
		}
	}
	switch {
	case fi.Mode().Type() != types[st.Mode&unix.S_IFMT]:
		return fmt.Sprintf("type %v; restored mode %o", fi.Mode().Type(), st.Mode)
	case uint32(fi.Mode().Perm()) != st.Mode&0o777 || special != wantSpecial || sys.Mode != st.Mode&0o7777:
		return fmt.Sprintf("mode %v (sys %o); restored %o", fi.Mode(), sys.Mode, st.Mode)
	case sys.UID != st.Uid || sys.GID != st.Gid:
		return fmt.Sprintf("owner %d:%d; restored %d:%d", sys.UID, sys.GID, st.Uid, st.Gid)
	case sys.MtimeNs != st.Mtim.Nano() || !fi.ModTime().Equal(time.Unix(st.Mtim.Unix())):
		return fmt.Sprintf("mtime %v (sys %d); restored %d", fi.ModTime(), sys.MtimeNs, st.Mtim.Nano())
	case fi.Mode().IsRegular() && fi.Size() != st.Size:
		return fmt.Sprintf("size %d; restored %d", fi.Size(), st.Size)
	}
	return ""
}

// sameContent compares a file's bytes or a symlink's target.
func sameContent(fsys fs.FS, p string, fi fs.FileInfo, host string) error {
	switch {
	case fi.Mode().IsRegular():
		got, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		want, err := os.ReadFile(host)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%q: the FS reads %d bytes that differ from the %d restored", p, len(got), len(want))
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		got, err := fs.ReadLink(fsys, p)
		if err != nil {
			return err
		}
		if want, err := os.Readlink(host); err != nil || got != want || fi.Size() != int64(len(want)) {
			return fmt.Errorf("%q: link to %q (size %d); restored %q, %v", p, got, fi.Size(), want, err)
		}
	}
	return nil
}

// xattrsOf returns a node's user.* xattrs (the ones any restore sets).
func xattrsOf(sys *repo.NodeSys) map[string]string {
	out := map[string]string{}
	for _, x := range sys.Xattrs {
		if strings.HasPrefix(x.Name, "user.") {
			out[x.Name] = string(x.Value)
		}
	}
	return out
}

// hostXattrs returns the user.* xattrs of path, not following a symlink.
func hostXattrs(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return out
	}
	mustDo(t, err)
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, name, v)
		mustDo(t, err)
		out[name] = string(v[:m])
	}
	return out
}

// smallTree writes d/sub/f.txt, f, a symlink l -> d, and a FIFO p.
func smallTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d", "sub", "f.txt"), []byte("deep\n"))
	writeFile(t, filepath.Join(src, "f"), []byte("top\n"))
	mustDo(t, os.Symlink("d", filepath.Join(src, "l")))
	mustDo(t, unix.Mkfifo(filepath.Join(src, "p"), 0o644))
	return src
}

// TestFSErrors: bad names, missing entries, paths through a file or a
// symlink, and operations on the wrong kind of entry fail with the io/fs
// sentinel that fits and a message naming the path.
func TestFSErrors(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, smallTree(t), repo.BackupOptions{})
	fsys := openFS(t, r, h.ID)
	tests := []struct {
		op, name string
		want     error
		msg      string
	}{
		{"open", "", fs.ErrInvalid, ""},
		{"open", "/f", fs.ErrInvalid, ""},
		{"open", "f/", fs.ErrInvalid, ""},
		{"open", "d//sub", fs.ErrInvalid, ""},
		{"open", "d/./sub", fs.ErrInvalid, ""},
		{"open", "d/../f", fs.ErrInvalid, ""},
		{"open", "..", fs.ErrInvalid, ""},
		{"open", "nope", fs.ErrNotExist, ""},
		{"stat", "d/nope", fs.ErrNotExist, ""},
		{"open", "f/x", fs.ErrNotExist, "f is not a directory"},
		{"lstat", "l/sub/f.txt", fs.ErrNotExist, "l is a symbolic link"},
		{"readlink", "f", fs.ErrInvalid, "not a symbolic link"},
		{"readlink", "d", fs.ErrInvalid, "not a symbolic link"},
		{"readdir", "f", fs.ErrInvalid, "not a directory"},
		{"readdir", "l", fs.ErrInvalid, "not a directory"},
		{"read", "d", fs.ErrInvalid, "is a directory"},
		{"read", "l", fs.ErrInvalid, "symbolic link"},
	}
	for _, tt := range tests {
		err := fsOp(fsys, tt.op, tt.name)
		var pe *fs.PathError
		if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Path != tt.name || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s(%q) = %v; want a PathError for the name, %v, saying %q", tt.op, tt.name, err, tt.want, tt.msg)
		}
	}
	// What does exist: the FIFO reads as empty, the link is not followed.
	if b, err := fs.ReadFile(fsys, "p"); err != nil || len(b) != 0 {
		t.Errorf("ReadFile(fifo) = %q, %v; want empty", b, err)
	}
	if fi, err := fsys.Stat("l"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Stat(symlink) = %v, %v; want the link itself", fi, err)
	}

	// After Close nothing opens, and a file opened before fails to read.
	f, err := fsys.Open("d/sub/f.txt")
	mustDo(t, err)
	mustDo(t, fsys.Close())
	if _, err := fsys.Open("f"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Open after Close: %v; want fs.ErrClosed", err)
	}
	if _, err := f.Read(make([]byte, 10)); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after the FS's Close: %v; want fs.ErrClosed", err)
	}
}

// fsOp runs one operation of TestFSErrors.
func fsOp(fsys *repo.SnapshotFS, op, name string) error {
	var err error
	switch op {
	case "open":
		var f fs.File
		if f, err = fsys.Open(name); err == nil {
			f.Close()
		}
	case "stat":
		_, err = fsys.Stat(name)
	case "lstat":
		_, err = fsys.Lstat(name)
	case "readlink":
		_, err = fsys.ReadLink(name)
	case "readdir":
		_, err = fsys.ReadDir(name)
	case "read":
		var f fs.File
		if f, err = fsys.Open(name); err == nil {
			_, err = f.Read(make([]byte, 10))
			f.Close()
		}
	}
	return err
}

// TestFSBadPack: a corrupt, truncated or missing pack fails the read with
// an error that names the pack and the file; the FS opens, lists and
// stats as before.
func TestFSBadPack(t *testing.T) {
	t.Parallel()
	for _, tt := range packDamages {
		t.Run(tt.name, func(t *testing.T) {
			r, id, name := damagedRepo(t, tt)
			fsys := openFS(t, r, id)
			if _, err := fsys.Stat("big.bin"); err != nil {
				t.Fatalf("Stat: %v", err)
			}
			_, err := fs.ReadFile(fsys, "big.bin")
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "big.bin") {
				t.Errorf("read from a %s pack: %v; want an error naming %s and big.bin", tt.name, err, name)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("read from a %s pack: %v; want %v", tt.name, err, tt.want)
			}
		})
	}
}

// storeSnapshot stores data blobs and tree blobs (the last is the root)
// in a pack per type, their index delta and a snapshot of the root; it
// returns the snapshot's ID. The blobs are stored as given, so they may
// say anything.
func storeSnapshot(t *testing.T, st store.Store, data [][]byte, trees [][]byte) chunk.ID {
	t.Helper()
	ctx := context.Background()
	enc, err := pack.NewEncoder()
	mustDo(t, err)
	var entries []pack.Entry
	for typ, blobs := range map[pack.BlobType][][]byte{pack.DataBlob: data, pack.TreeBlob: trees} {
		if len(blobs) == 0 {
			continue
		}
		w := pack.NewWriter(enc, pack.Options{})
		for _, b := range blobs {
			mustDo(t, w.Add(chunk.Hash(b), typ, b))
		}
		p, err := w.Finish()
		mustDo(t, err)
		s := p.ID.String()
		mustDo(t, st.Save(ctx, "packs/"+s[:2]+"/"+s, p.Data, store.SaveOptions{}))
		entries = append(entries, p.Entries...)
	}
	idx, err := pack.EncodeIndex(entries)
	mustDo(t, err)
	mustDo(t, st.Save(ctx, "index/"+chunk.Hash(idx).String(), idx, store.SaveOptions{}))
	snap := &manifest.Snapshot{Version: manifest.Version, Tree: chunk.Hash(trees[len(trees)-1]), Dir: "/src", Created: time.Now().UTC()}
	sd, err := snap.Encode()
	mustDo(t, err)
	id := chunk.Hash(sd)
	mustDo(t, st.Save(ctx, "snapshots/"+id.String(), sd, store.SaveOptions{}))
	return id
}

func encodeTree(t *testing.T, nodes ...manifest.Node) []byte {
	t.Helper()
	b, err := (&manifest.Tree{Nodes: nodes}).Encode()
	mustDo(t, err)
	return b
}

// TestFSHostileSnapshot: a snapshot nobody vouches for cannot make the FS
// misbehave. A DAG of trees that expands to 2^60 paths costs a lookup one
// tree per path element and a listing one tree; a file whose chunks are
// missing or do not add up to its size fails to open, naming it; a tree
// with a bad name fails where it is loaded.
func TestFSHostileSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	hello := []byte("hello")
	leaf := encodeTree(t,
		manifest.Node{Name: "liar", Type: manifest.TypeFile, Mode: 0o644, Size: 6, Content: []chunk.ID{chunk.Hash(hello)}},
		manifest.Node{Name: "lost", Type: manifest.TypeFile, Mode: 0o644, Size: 5, Content: []chunk.ID{chunk.Hash([]byte("gone"))}},
		manifest.Node{Name: "ok", Type: manifest.TypeFile, Mode: 0o644, Size: 5, Content: []chunk.ID{chunk.Hash(hello)}},
	)
	trees := [][]byte{leaf}
	const levels = 60
	for range levels {
		sub := chunk.Hash(trees[len(trees)-1])
		trees = append(trees, encodeTree(t,
			manifest.Node{Name: "a", Type: manifest.TypeDir, Mode: 0o755, Subtree: sub},
			manifest.Node{Name: "b", Type: manifest.TypeDir, Mode: 0o755, Subtree: sub}))
	}
	id := storeSnapshot(t, st, [][]byte{hello}, trees)
	r, err := repo.Open(ctx, st, repo.Options{})
	mustDo(t, err)
	fsys := openFS(t, r, id)
	dir := strings.Repeat("a/b/", levels/2)
	if b, err := fs.ReadFile(fsys, dir+"ok"); err != nil || string(b) != "hello" {
		t.Errorf("ReadFile at depth %d = %q, %v", levels, b, err)
	}
	if des, err := fsys.ReadDir("."); err != nil || len(des) != 2 {
		t.Errorf("ReadDir(.) = %d entries, %v; want 2", len(des), err)
	}
	for name, want := range map[string]error{"liar": manifest.ErrInvalid, "lost": repo.ErrBlobNotFound} {
		_, err := fsys.Open(dir + name)
		if !errors.Is(err, want) || !strings.Contains(err.Error(), dir+name) {
			t.Errorf("Open(%s): %v; want %v naming the file", name, err, want)
		}
	}

	// A tree whose name would escape is refused by the decoder when a
	// lookup reaches it; the FS of the root that holds it opens.
	good := encodeTree(t, manifest.Node{Name: "qq", Type: manifest.TypeFile, Mode: 0o644})
	bad := bytes.Replace(good, []byte("qq"), []byte(".."), 1)
	top := encodeTree(t, manifest.Node{Name: "evil", Type: manifest.TypeDir, Mode: 0o755, Subtree: chunk.Hash(bad)})
	id = storeSnapshot(t, st, nil, [][]byte{bad, top})
	r, err = repo.Open(ctx, st, repo.Options{})
	mustDo(t, err)
	fsys = openFS(t, r, id)
	if _, err := fsys.ReadDir("evil"); !errors.Is(err, manifest.ErrBadName) {
		t.Errorf("ReadDir of a tree naming \"..\": %v; want manifest.ErrBadName", err)
	}
}

// TestFSExternalProgram: a module outside this one, using only exported
// API, opens a repository in a local folder, opens a snapshot's FS and
// walks it (testdata/fswalk, built and run with go run). Its listing must
// match the source directory's.
func TestFSExternalProgram(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH; cannot build testdata/fswalk")
	}
	ctx := context.Background()
	src := smallTree(t)
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(5, 2<<20))
	repoDir := t.TempDir()
	st, err := local.Create(repoDir)
	mustDo(t, err)
	r := newTestRepo(t, st, repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})

	mod := t.TempDir()
	root, err := filepath.Abs("..")
	mustDo(t, err)
	for _, name := range []string{"go.mod", "main.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fswalk", name))
		mustDo(t, err)
		writeFile(t, filepath.Join(mod, name), b)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	mustDo(t, err)
	writeFile(t, filepath.Join(mod, "go.sum"), sum)
	// Offline: every module comes from the module cache, and go.sum is
	// this repository's.
	env := append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
		"GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local")
	goCmd := func(args ...string) []byte {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir, cmd.Env = mod, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	// The replace directive points at the repository root relative to
	// testdata/fswalk; the copy needs it absolute.
	goCmd("mod", "edit", "-replace=github.com/sandsnap/sandsnap="+root)
	got := goCmd("run", ".", repoDir, h.ID.String())
	if want := describeDir(t, src); string(got) != want {
		t.Errorf("fswalk printed:\n%s\nwant:\n%s", got, want)
	}
}

// describeDir lists src as testdata/fswalk lists a snapshot of it.
func describeDir(t *testing.T, src string) string {
	t.Helper()
	var b strings.Builder
	mustDo(t, filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		var st unix.Stat_t
		mustDo(t, unix.Lstat(p, &st))
		typ, size, digest := manifest.TypeDir, int64(0), "-"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			mustDo(t, err)
			typ, size, digest = manifest.TypeFile, st.Size, fmt.Sprintf("%x", sha256.Sum256(data))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			mustDo(t, err)
			typ, size, digest = manifest.TypeSymlink, int64(len(target)), fmt.Sprintf("%q", target)
		case unix.S_IFIFO:
			typ = manifest.TypeFIFO
		}
		fmt.Fprintf(&b, "%q %s %04o %d:%d %d %s\n", filepath.ToSlash(rel), typ, st.Mode&0o7777, st.Uid, st.Gid, size, digest)
		return nil
	}))
	return b.String()
}
