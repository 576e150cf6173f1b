package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) rmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm HANDLE...",
		Short: "Remove snapshots now (gc frees their data later)",
		Long: `rm removes snapshot objects at once, whatever their TTL. The chunks they
held stay in the repository until gc finds that no live snapshot reaches
them. Each HANDLE is resolved as for restore (ID, ID prefix, name, handle
file or "-"); a name removes only the newest live snapshot with it.`,
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
			for _, arg := range args {
				id, err := s.r.Resolve(ctx, arg, a.stdin)
				if err != nil {
					return err
				}
				if err := s.r.Remove(ctx, id); err != nil {
					return err
				}
				if _, err := fmt.Fprintf(a.stdout, "removed %s\n", id); err != nil {
					return err
				}
			}
			return nil
		},
	}
	return cmd
}
