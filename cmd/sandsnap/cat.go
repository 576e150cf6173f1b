package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

func (a *app) catCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat HANDLE PATH",
		Short: "Write a file of a snapshot to stdout",
		Long: `cat writes the bytes of the regular file PATH of snapshot HANDLE to stdout,
fetching only the parts of packs that hold them. PATH is relative to the
snapshot's root ("dir/file", a leading "/" is ignored). Symlinks are not
followed: cat of a symlink fails, naming its target. A named pipe gives
nothing.`,
		Args: argsNamed("HANDLE", "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := snapshotPath(args[1])
			if err != nil {
				return err
			}
			return a.withSnapshotFS(cmd.Context(), args[0], func(fsys *repo.SnapshotFS) error {
				return catFile(a.stdout, fsys, name)
			})
		},
	}
}

// withSnapshotFS opens the repository (with the host cache: cat and ls
// read packs), resolves handle and runs fn on the snapshot's FS. Errors
// name the snapshot.
func (a *app) withSnapshotFS(ctx context.Context, handle string, fn func(*repo.SnapshotFS) error) error {
	a.useCache = true
	s, err := a.open(ctx, openExisting)
	if err != nil {
		return err
	}
	id, err := s.resolve(ctx, handle, a.stdin)
	if err != nil {
		return err
	}
	fsys, err := s.r.FS(ctx, id)
	if err != nil {
		return err
	}
	defer fsys.Close()
	if err := fn(fsys); err != nil {
		return fmt.Errorf("snapshot %s: %w", id.String()[:shortIDLen], err)
	}
	return nil
}

// catFile copies the regular file name to w.
func catFile(w io.Writer, fsys *repo.SnapshotFS, name string) error {
	fi, err := fsys.Lstat(name)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		return fmt.Errorf("%s is a directory (list it with ls)", displayPath(name))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := fsys.ReadLink(name)
		if err != nil {
			return err
		}
		return fmt.Errorf("%s is a symbolic link to %s, which cat does not follow", displayPath(name), displayPath(target))
	}
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(w, f, make([]byte, 1<<20))
	return err
}

// snapshotPath turns a PATH argument into an io/fs name: slashes at
// either end are dropped ("" and "/" are the root, "."); "." and ".."
// elements and empty ones are refused, so a path means one entry only.
func snapshotPath(arg string) (string, error) {
	p := strings.Trim(arg, "/")
	if p == "" || p == "." {
		return ".", nil
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return "", usageErrorf("PATH %s: no \".\", \"..\" or empty elements (a path inside the snapshot, like dir/file)", displayPath(arg))
		}
	}
	return p, nil
}
