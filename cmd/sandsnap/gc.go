package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

func (a *app) gcCmd() *cobra.Command {
	var (
		opts   repo.GCOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove expired snapshots and free the packs no live snapshot needs",
		Long: `gc removes expired snapshot objects (judged by the store's clock), deletes
the packs that an earlier gc condemned once every backup or restore that was
running then has ended, folds the index, and condemns the packs that no live
snapshot needs, copying the live blobs out of mostly-dead packs first.

A condemned pack is deleted only by a later gc run, so run gc regularly
(e.g. daily): with no writer running, two runs free what expired snapshots
alone held. It is safe while backups and restores run, and while another
gc runs (one of them then stops with "another gc is running").`,
		Args: argsNamed(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.RepackThreshold < 0 || opts.RepackThreshold > 1 {
				return usageErrorf("--repack-threshold %v: want a fraction from 0 to 1", opts.RepackThreshold)
			}
			if opts.RepackThreshold == 0 {
				opts.RepackThreshold = -1 // 0 means never repack here, not the default
			}
			s, err := a.open(cmd.Context(), openExisting)
			if err != nil {
				return err
			}
			rep, err := s.r.GC(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, rep)
			}
			return printGC(a, rep)
		},
	}
	cmd.Flags().Float64Var(&opts.RepackThreshold, "repack-threshold", repo.DefaultRepackThreshold,
		"repack packs whose live fraction (by bytes) is below this (0: never repack)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "report what gc would do and change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printGC(a *app, rep repo.GCReport) error {
	would := ""
	if rep.DryRun {
		would = " (dry run: nothing changed)"
	}
	_, err := fmt.Fprintf(a.stdout,
		"snapshots  %d expired removed, %d live (%d blobs reachable)\n"+
			"packs      %d deleted (%s freed), %d condemned, %d repacked (%s copied), %d waiting for writers, %d kept\n"+
			"leases     %d running writers, %d expired leases removed\n"+
			"index      %d deltas folded\n"+
			"generation %d%s\n",
		rep.ExpiredRemoved, rep.Snapshots, rep.BlobsReachable,
		rep.PacksDeleted, formatBytes(rep.BytesFreed), rep.PacksCondemned, rep.PacksRepacked, formatBytes(rep.BytesRepacked),
		rep.PacksWaiting, rep.PacksKept,
		rep.Leases, rep.LeasesRemoved,
		rep.IndexFolded, rep.Generation, would)
	return err
}
