package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status DIR",
		Short: "Say what sandsnap knows of a directory on this host",
		Long: `status reports DIR's state: "tracked" (restored from or backed up as a
snapshot on this host, which its files cache records), "incomplete" (it holds
the marker of a restore that did not finish, or is running now), "untracked"
or "missing". It changes nothing.`,
		Args: argsNamed("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a.useCache = true // the files caches live in the cache folder
			s, err := a.open(ctx, openExisting)
			if err != nil {
				return err
			}
			st, err := s.r.DirStatus(ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, st)
			}
			return printStatus(a.stdout, st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func printStatus(w io.Writer, st repo.DirStatus) error {
	var b strings.Builder
	fmt.Fprintf(&b, "dir         %s\nstate       %s\n", displayPath(st.Dir), st.State)
	switch rec := st.Record; {
	case rec != nil && rec.Error != "":
		fmt.Fprintf(&b, "record      %s: %s\n", rec.Path, rec.Error)
	case rec != nil:
		fate := "in the repository"
		switch {
		case !rec.SnapshotExists:
			fate = "no longer in the repository"
		case rec.Expired:
			fate = "expired"
		}
		fmt.Fprintf(&b, "record      snapshot %s (%s), %d files, written %s\n", rec.Snapshot, fate, rec.Files, formatTime(rec.Written))
	case st.NoCache:
		b.WriteString("record      none kept without a cache folder (--no-cache)\n")
	default:
		b.WriteString("record      none: sandsnap has not restored or backed it up on this host\n")
	}
	if in := st.Incomplete; in != nil {
		b.WriteString(incompleteLines(st.Dir, in))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// incompleteLines describes an unfinished restore and how to finish it.
func incompleteLines(dir string, in *repo.IncompleteRestore) string {
	if in.Error != "" {
		return fmt.Sprintf("incomplete  unreadable marker: %s\n", in.Error)
	}
	who := fmt.Sprintf("process %d on %s", in.PID, in.Host)
	switch {
	case in.Running:
		who += ", running now"
	case in.PIDAlive:
		who += ", not running (a process with that ID is alive)"
	default:
		who += ", not running"
	}
	return fmt.Sprintf("incomplete  restore of snapshot %s, started %s by %s\n"+
		"            to finish it: sandsnap restore %s %s (or remove %s to keep DIR as it is)\n",
		in.Snapshot, formatTime(in.Started), who,
		in.Snapshot, displayPath(dir), displayPath(filepath.Join(dir, ".sandsnap-restoring")))
}
