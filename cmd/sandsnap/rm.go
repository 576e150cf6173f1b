package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/chunk"
)

// rmOutput is what rm --json prints, also when it fails part way: the
// snapshots it removed before the failure.
type rmOutput struct {
	Removed []chunk.ID `json:"removed"`
}

func (a *app) rmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm HANDLE...",
		Short: "Remove snapshots now (gc frees their data later)",
		Long: `rm removes snapshot objects at once, whatever their TTL. The chunks they
held stay in the repository until gc finds that no live snapshot reaches
them. Each HANDLE is resolved as for restore (ID, ID prefix, name, handle
file or "-"); a name removes only the newest live snapshot with it.
With --json it prints {"removed": [IDs]}, also when it stops at a HANDLE
that fails (then with the error on stderr).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s: missing HANDLE", cmd.Name())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx, openExisting)
			if err != nil {
				return err
			}
			out := rmOutput{Removed: []chunk.ID{}}
			for _, arg := range args {
				var id chunk.ID
				id, err = s.resolve(ctx, arg, a.stdin)
				if err == nil {
					err = s.r.Remove(ctx, id)
				}
				if err != nil {
					break
				}
				out.Removed = append(out.Removed, id)
				if !a.json {
					if _, err = fmt.Fprintf(a.stdout, "removed %s\n", id); err != nil {
						return err
					}
				}
			}
			if a.json {
				if werr := writeJSON(a.stdout, out); err == nil {
					err = werr
				}
			}
			return err
		},
	}
	return cmd
}
