package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

// shortIDLen is how many hex digits of an ID a listing shows; a prefix
// of at least 8 is accepted as a HANDLE.
const shortIDLen = 12

func (a *app) lsCmd() *cobra.Command {
	var (
		opts   repo.ListOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ls [HANDLE [PATH]]",
		Short: "List snapshots, newest first, or the files of one",
		Long: `ls with no HANDLE lists the repository's live snapshots, newest first
(--all adds the expired ones, --name filters by name).

ls HANDLE [PATH] lists directory PATH of the snapshot (default its root),
or the one entry PATH names, as ls -l does: mode, owner (numeric), size,
mtime (UTC) and name, with a symlink's target; symlinks are not followed.`,
		Args: argsUpTo("HANDLE", "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if opts.Name != "" || opts.AllExpired {
					return lsUsage(args)
				}
				return a.lsSnapshot(cmd.Context(), args, asJSON)
			}
			s, err := a.open(cmd.Context(), openExisting)
			if err != nil {
				return err
			}
			// A snapshot object that cannot be read is one warning line;
			// the others are still listed, with exit status 0.
			opts.OnSkip = func(_ string, err error) {
				fmt.Fprintf(a.stderr, "sandsnap: warning: skipped: %s\n", oneLine(err.Error()))
			}
			hs, err := s.r.Snapshots(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				if hs == nil {
					hs = []repo.Handle{}
				}
				return writeJSON(a.stdout, listedAll(hs))
			}
			return printList(a, hs)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "only snapshots with this name")
	cmd.Flags().BoolVar(&opts.AllExpired, "all", false, "include expired snapshots")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of handles (with HANDLE: of entries)")
	return cmd
}

func printList(a *app, hs []repo.Handle) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tNAME\tFILES\tSIZE\tEXPIRES")
	for _, h := range hs {
		name := h.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", h.ID.String()[:shortIDLen], formatTime(h.Created), name,
			h.Stats.Files, formatBytes(h.Stats.Bytes), formatExpires(h))
	}
	return tw.Flush()
}
