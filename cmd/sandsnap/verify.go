package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

func (a *app) verifyCmd() *cobra.Command {
	var (
		opts   repo.VerifyOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the repository's structure (and with --read-data, every byte)",
		Long: `verify checks that every index, pack trailer, snapshot and tree is sound and
that every file of every snapshot can be found. With --read-data it also
reads every pack whole and checks every blob's hash. It exits with status 15
(code "corrupt") if it finds any problem.`,
		Args: argsNamed(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), openExisting)
			if err != nil {
				return err
			}
			rep, err := s.r.Verify(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if rep.Problems == nil {
				rep.Problems = []repo.Problem{}
			}
			if asJSON {
				err = writeJSON(a.stdout, rep)
			} else {
				err = printVerify(a, rep)
			}
			if err != nil {
				return err
			}
			if n := len(rep.Problems); n > 0 {
				return &verifyError{url: s.url, n: n, first: rep.Problems[0]}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.ReadData, "read-data", false, "read every pack and check every blob's hash")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printVerify(a *app, rep repo.VerifyReport) error {
	for _, p := range rep.Problems {
		if _, err := fmt.Fprintf(a.stdout, "problem  %s\n", p); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(a.stdout, "checked  %d snapshots, %d trees, %d blobs in %d packs (%s read): %d problems\n",
		rep.Snapshots, rep.Trees, rep.Blobs, rep.Packs, formatBytes(rep.BytesRead), len(rep.Problems))
	return err
}
