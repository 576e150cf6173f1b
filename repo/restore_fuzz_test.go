package repo_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// The world outside a fuzzed restore's target: a sibling directory of
// files, a symlink to it beside the target, and a hard link from the
// target to one of its files. Contents and mtimes are fixed so that a
// tree naming them with the same content reaches the "unchanged" path.
var (
	fuzzSecret  = []byte("the host's secret\n")
	fuzzShared  = []byte("linked from inside the target\n")
	fuzzMtime   = time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC).UnixNano()
	fuzzPayload = bytes.Repeat([]byte("payload "), 300)
)

// fuzzLibrary is a few valid trees stored beside every fuzzed tree, so
// that seeds (and their mutations) can name subdirectories that exist: a
// link group shared with the root, files over the outside ones' names, a
// symlink that climbs out.
func fuzzLibrary(t testing.TB) [][]byte {
	hostile := func(name string, content []byte, link uint64) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeFile, Mode: 0o4777, UID: 65534, GID: 65534, MtimeNs: fuzzMtime,
			Size: uint64(len(content)), Content: []chunk.ID{chunk.Hash(content)}, LinkID: link}
	}
	return [][]byte{
		encodeTree(t, hostile("secret.txt", fuzzSecret, 0), hostile("hl", fuzzShared, 9)),
		encodeTree(t,
			hostile("inner", fuzzPayload, 0),
			manifest.Node{Name: "link", Type: manifest.TypeSymlink, Mode: 0o777, Target: "../../outside/secret.txt"}),
	}
}

// fuzzSeeds are valid and nearly valid trees over the names the target
// and its surroundings hold.
func fuzzSeeds(t testing.TB, lib [][]byte) [][]byte {
	file := func(name string, mode uint32, content []byte, link uint64, xs ...manifest.Xattr) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeFile, Mode: mode, UID: 65534, GID: 65534, MtimeNs: fuzzMtime,
			Size: uint64(len(content)), Content: []chunk.ID{chunk.Hash(content)}, LinkID: link, Xattrs: xs}
	}
	dir := func(name string, sub []byte) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeDir, Mode: 0o755, MtimeNs: fuzzMtime, Subtree: chunk.Hash(sub)}
	}
	symlink := func(name, target string) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeSymlink, Mode: 0o777, Target: target}
	}
	fifo := func(name string) manifest.Node {
		return manifest.Node{Name: name, Type: manifest.TypeFIFO, Mode: 0o666, MtimeNs: fuzzMtime}
	}
	dotted := encodeTree(t, file(".q", 0o644, fuzzSecret, 0), file("hl", 0o644, fuzzShared, 0))
	return [][]byte{
		encodeTree(t, dir("abs", lib[1]), file("d", 0o644, fuzzSecret, 0), dir("esc", lib[0]),
			file("hl", 0o4777, fuzzShared, 9), file("hl2", 0o4777, fuzzShared, 9), symlink("sym", "../sym/secret.txt")),
		encodeTree(t, symlink("esc", "../outside"), fifo("hl"), dir("z", lib[0])),
		encodeTree(t, file("hl", 0o2770, fuzzShared, 0,
			manifest.Xattr{Name: "security.capability", Value: []byte{1, 0, 0, 2, 0xff, 0xff, 0xff, 0xff}},
			manifest.Xattr{Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0, 4, 0, 7, 0}},
			manifest.Xattr{Name: "trusted.overlay.opaque", Value: []byte("y")},
			manifest.Xattr{Name: "user.a", Value: []byte("b")})),
		bytes.Replace(dotted, []byte(".q"), []byte(".."), 1),
		encodeTree(t, file("abs", 0o600, fuzzPayload, 3), file("esc", 0o600, fuzzPayload, 3), fifo("sym")),
		encodeTree(t),
	}
}

// fuzzBase is a repository holding the data blobs the trees may name,
// copied for every input.
func fuzzBase(t testing.TB) *mem.Store {
	st := mem.New()
	r := newTestRepo(t, st, repo.Options{Workers: 1})
	src := t.TempDir()
	for i, content := range [][]byte{fuzzSecret, fuzzShared, fuzzPayload} {
		writeFile(t, filepath.Join(src, string(rune('a'+i))), content)
	}
	backupOf(t, r, src, repo.BackupOptions{})
	return st
}

func cloneStore(t testing.TB, from *mem.Store) *mem.Store {
	ctx := context.Background()
	to := mem.New()
	mustDo(t, from.List(ctx, "", func(fi store.Info) error {
		data, err := store.LoadAll(ctx, from, fi.Name, 0, 0)
		if err != nil {
			return err
		}
		return to.Save(ctx, fi.Name, data, store.SaveOptions{})
	}))
	return to
}

// FuzzRestoreTree restores arbitrary bytes as a tree (the root, or a
// subdirectory that a valid root places over symlinks to the outside) in
// place into a target that holds symlinks and a hard link to the outside,
// and checks that nothing outside the target changed, whatever the
// restore returned.
func FuzzRestoreTree(f *testing.F) {
	base := fuzzBase(f)
	lib := fuzzLibrary(f)
	for _, seed := range fuzzSeeds(f, lib) {
		f.Add(seed, false, false)
		f.Add(seed, true, false)
		f.Add(seed, false, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, asSubtree, untrusted bool) {
		if len(data) > 1<<20 {
			t.Skip("larger than a pack blob needs to be for this")
		}
		st := cloneStore(t, base)
		trees := append([][]byte{data}, lib...)
		if asSubtree {
			sub := manifest.Node{Type: manifest.TypeDir, Mode: 0o755, Subtree: chunk.Hash(data)}
			root := encodeTree(t, named(sub, "abs"), named(sub, "d"), named(sub, "esc"))
			trees = append([][]byte{root}, trees...)
		}
		id := storeTrees(t, st, trees...)
		r, err := repo.Open(context.Background(), st, repo.Options{Workers: 1})
		mustDo(t, err)

		parent := t.TempDir()
		dst := fuzzWorld(t, parent)
		before := outsideState(t, parent)
		_, err = r.Restore(context.Background(), id, dst, repo.RestoreOptions{Delete: true, Untrusted: untrusted})
		t.Cleanup(func() { makeRemovable(dst) })
		after := outsideState(t, parent)
		for p, b := range before {
			if a := after[p]; a != b {
				t.Errorf("restore (error %v) changed %s outside the target:\nbefore %s\nafter  %s", err, p, b, a)
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok {
				t.Errorf("restore (error %v) created %s outside the target", err, p)
			}
		}
		checkSharedLinks(t, parent, dst)
	})
}

func named(n manifest.Node, name string) manifest.Node {
	n.Name = name
	return n
}

// fuzzWorld builds the target's surroundings in parent and the target
// itself, and returns the target.
func fuzzWorld(t *testing.T, parent string) string {
	outside := filepath.Join(parent, "outside")
	for name, content := range map[string][]byte{"secret.txt": fuzzSecret, "hl-src": fuzzShared, "dir/inner": fuzzPayload} {
		p := filepath.Join(outside, name)
		writeFile(t, p, content)
		mustDo(t, os.Chtimes(p, time.Unix(0, fuzzMtime), time.Unix(0, fuzzMtime)))
	}
	if err := unix.Lsetxattr(filepath.Join(outside, "secret.txt"), "user.owner", []byte("host"), 0); err != nil && err != unix.EOPNOTSUPP {
		t.Fatal(err)
	}
	mustDo(t, os.Symlink("outside", filepath.Join(parent, "sym")))
	dst := filepath.Join(parent, "dst")
	writeFile(t, filepath.Join(dst, "d/x"), []byte("inside"))
	mustDo(t, os.Link(filepath.Join(outside, "hl-src"), filepath.Join(dst, "hl")))
	mustDo(t, os.Symlink("../outside", filepath.Join(dst, "esc")))
	mustDo(t, os.Symlink(outside, filepath.Join(dst, "abs")))
	return dst
}

// outsideState describes every entry of parent except the target, at the
// stat level. hl-src's link count is left out: removing the target's link
// to it lowers it, legitimately; checkSharedLinks checks it.
func outsideState(t *testing.T, parent string) map[string]string {
	state := make(map[string]string)
	mustDo(t, filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(parent, p)
		switch {
		case rel == "dst":
			return fs.SkipDir
		case rel == "outside/hl-src":
			state[rel] = describeInode(t, p, false)
		case rel != ".": // the parent itself may change with the target
			state[rel] = inodeState(t, p)
		}
		return nil
	}))
	return state
}

// checkSharedLinks checks that the restore gave the outside inode no new
// name: its links are itself plus at most the target's original "hl".
func checkSharedLinks(t *testing.T, parent, dst string) {
	var src unix.Stat_t
	mustDo(t, unix.Lstat(filepath.Join(parent, "outside/hl-src"), &src))
	var inside []string
	complete := true
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			complete = false // unreadable to a non-root fuzzer: count what it can
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Dev == src.Dev && st.Ino == src.Ino {
			inside = append(inside, p)
		}
		return nil
	})
	if len(inside) > 1 || (len(inside) == 1 && inside[0] != filepath.Join(dst, "hl")) {
		t.Errorf("names inside the target linked to the outside file: %v", inside)
	}
	if complete && src.Nlink != uint64(1+len(inside)) {
		t.Errorf("the outside file has %d links; want itself and %v", src.Nlink, inside)
	}
}

// makeRemovable gives every directory below dir owner rwx, so that a
// non-root test can remove what a restore made read-only.
func makeRemovable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
}
