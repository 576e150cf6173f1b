package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long:  "init creates an empty repository at --repo (creating a local folder if needed). It fails if one exists.",
		Args:  argsNamed(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), initNew)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "created sandsnap repository %s at %s\n", s.r.Config().ID, s.url)
			return err
		},
	}
}
