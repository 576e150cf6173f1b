package main

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

// lsEntry is one entry of ls HANDLE [PATH] --json.
type lsEntry struct {
	Name string `json:"name"`
	// NameBytes holds the name's bytes (base64) when they are not UTF-8,
	// which a JSON string cannot carry: Name then has U+FFFD in their
	// place. TargetBytes is the same for a symlink's target.
	NameBytes   []byte    `json:"name_bytes,omitempty"`
	Type        string    `json:"type"` // file, dir, symlink, fifo
	Mode        string    `json:"mode"` // octal permission bits with setuid, setgid, sticky: "0755"
	UID         uint32    `json:"uid"`
	GID         uint32    `json:"gid"`
	Size        int64     `json:"size"`
	Mtime       time.Time `json:"mtime"`
	Target      string    `json:"target,omitempty"`
	TargetBytes []byte    `json:"target_bytes,omitempty"`
	LinkID      uint64    `json:"link_id,omitempty"` // equal for the names of one hard-linked file

	bits uint32 // Mode as a number
}

// lsSnapshot lists directory PATH (default the root) of snapshot HANDLE,
// or the one entry PATH names when it is not a directory.
func (a *app) lsSnapshot(ctx context.Context, args []string, asJSON bool) error {
	name := "."
	if len(args) > 1 {
		var err error
		if name, err = snapshotPath(args[1]); err != nil {
			return err
		}
	}
	return a.withSnapshotFS(ctx, args[0], func(fsys *repo.SnapshotFS) error {
		entries, err := lsEntries(fsys, name)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(a.stdout, entries)
		}
		return printEntries(a, entries)
	})
}

// lsEntries describes the entries of directory name, or name itself.
func lsEntries(fsys *repo.SnapshotFS, name string) ([]lsEntry, error) {
	fi, err := fsys.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		e, err := newLSEntry(fsys, name, fi)
		return []lsEntry{e}, err
	}
	des, err := fsys.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]lsEntry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		e, err := newLSEntry(fsys, path.Join(name, de.Name()), fi)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func newLSEntry(fsys *repo.SnapshotFS, name string, fi fs.FileInfo) (lsEntry, error) {
	sys, ok := fi.Sys().(*repo.NodeSys)
	if !ok {
		return lsEntry{}, fmt.Errorf("%s: no node metadata", displayPath(name))
	}
	e := lsEntry{
		Name: fi.Name(), Type: sys.Type.String(), Mode: fmt.Sprintf("%04o", sys.Mode),
		UID: sys.UID, GID: sys.GID, Size: fi.Size(), Mtime: time.Unix(0, sys.MtimeNs).UTC(), LinkID: sys.LinkID,
		bits: sys.Mode,
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := fsys.ReadLink(name)
		if err != nil {
			return lsEntry{}, err
		}
		e.Target = target
		if !utf8.ValidString(target) {
			e.TargetBytes = []byte(target)
		}
	}
	if !utf8.ValidString(e.Name) {
		e.NameBytes = []byte(e.Name)
	}
	return e, nil
}

// printEntries prints entries as ls -l does: mode, owner, size, mtime,
// name (and a symlink's target), odd names quoted.
func printEntries(a *app, entries []lsEntry) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 0, ' ', tabwriter.AlignRight)
	for _, e := range entries {
		name := displayPath(e.Name)
		if e.Target != "" {
			name += " -> " + displayPath(e.Target)
		}
		fmt.Fprintf(tw, "%s\t %d\t %d\t %d\t %s\t %s\n", modeString(e), e.UID, e.GID, e.Size, formatTime(e.Mtime), name)
	}
	return tw.Flush()
}

// modeString renders an entry's type and mode bits as ls -l does:
// "drwxr-sr-x", "-rwsr-xr-x", "drwxrwxrwt", "prw-r-----".
func modeString(e lsEntry) string {
	mode := e.bits
	b := []byte("-rwxrwxrwx")
	switch e.Type {
	case "dir":
		b[0] = 'd'
	case "symlink":
		b[0] = 'l'
	case "fifo":
		b[0] = 'p'
	}
	for i := range 9 {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, at int, set byte) {
		if mode&bit == 0 {
			return
		}
		if b[at] == '-' {
			set -= 'a' - 'A' // capital: the bit without execute
		}
		b[at] = set
	}
	special(0o4000, 3, 's')
	special(0o2000, 6, 's')
	special(0o1000, 9, 't')
	return string(b)
}

// lsUsage is the usage error for --name or --all given with a HANDLE.
func lsUsage(args []string) error {
	return usageErrorf("ls %s: --name and --all filter the list of snapshots; they do not apply to a snapshot's files", strings.Join(args, " "))
}

// argsUpTo accepts at most len(names) arguments and names the extra one
// in a usage error.
func argsUpTo(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > len(names) {
			return usageErrorf("%s: unexpected argument %q", cmd.Name(), args[len(names)])
		}
		return nil
	}
}
