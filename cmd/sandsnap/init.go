package main

import (
	"fmt"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/spf13/cobra"
)

// initOutput is what init --json prints.
type initOutput struct {
	ID       string `json:"id"`
	Location string `json:"location"`
}

func (a *app) initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `init creates an empty repository at --repo (creating a local folder if needed). It fails if one exists.
--compression sets the zstd level packs are written with: fastest (level 1, the default: backups
are CPU-bound, and it costs about 3% more bytes than level 3), default (level 3) or better.
With --json it prints {"id", "location"}.`,
		Args: argsNamed(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := repo.CheckCompression(a.compression); err != nil {
				return usageErrorf("--compression: %v", err)
			}
			s, err := a.open(cmd.Context(), initNew)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, initOutput{ID: s.r.Config().ID, Location: s.url})
			}
			_, err = fmt.Fprintf(a.stdout, "created sandsnap repository %s at %s\n", s.r.Config().ID, s.url)
			return err
		},
	}
	cmd.Flags().StringVar(&a.compression, "compression", "fastest", "zstd level of the packs: fastest, default or better")
	return cmd
}
