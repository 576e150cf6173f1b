// Command fswalk lists a snapshot through sandsnap's exported API only:
// it opens the repository in a local folder, opens the snapshot as an
// io/fs.FS and walks it with fs.WalkDir, printing one line per entry:
//
//	"path" type mode uid:gid size digest
//
// where digest is the SHA-256 of a file's bytes, a symlink's quoted
// target, or "-". repo's tests build and run it (TestFSExternalProgram)
// to prove that a program outside the module can do this.
//
// Usage: go run . REPO_DIR SNAPSHOT_ID
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/local"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fswalk:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: fswalk REPO_DIR SNAPSHOT_ID")
	}
	ctx := context.Background()
	st, err := local.Open(args[0])
	if err != nil {
		return err
	}
	r, err := repo.Open(ctx, st, repo.Options{})
	if err != nil {
		return err
	}
	id, err := chunk.ParseID(args[1])
	if err != nil {
		return err
	}
	fsys, err := r.FS(ctx, id)
	if err != nil {
		return err
	}
	defer fsys.Close()
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		line, err := describe(fsys, p, d)
		if err != nil {
			return err
		}
		fmt.Println(line)
		return nil
	})
}

// describe returns the line for one entry.
func describe(fsys *repo.SnapshotFS, p string, d fs.DirEntry) (string, error) {
	fi, err := d.Info()
	if err != nil {
		return "", err
	}
	sys, ok := fi.Sys().(*repo.NodeSys)
	if !ok {
		return "", fmt.Errorf("%s: Sys() is %T, want *repo.NodeSys", p, fi.Sys())
	}
	digest := "-"
	switch {
	case fi.Mode().IsRegular():
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		digest = fmt.Sprintf("%x", sha256.Sum256(data))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := fs.ReadLink(fsys, p)
		if err != nil {
			return "", err
		}
		digest = fmt.Sprintf("%q", target)
	}
	return fmt.Sprintf("%q %s %04o %d:%d %d %s", p, sys.Type, sys.Mode, sys.UID, sys.GID, fi.Size(), digest), nil
}
