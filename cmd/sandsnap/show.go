package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/repo"
)

// showOutput is what show --json prints: the handle (so the output is
// itself a handle file) plus the snapshot object.
type showOutput struct {
	listedHandle
	Snapshot *manifest.Snapshot `json:"snapshot"`
}

func (a *app) showCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show HANDLE",
		Short: "Print a snapshot's handle and summary",
		Args:  argsNamed("HANDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx, openExisting)
			if err != nil {
				return err
			}
			id, err := s.resolve(ctx, args[0], a.stdin)
			if err != nil {
				return err
			}
			snap, err := s.r.Snapshot(ctx, id)
			if err != nil {
				return err
			}
			h, err := s.r.Handle(ctx, id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, showOutput{listedHandle: listed(h), Snapshot: snap})
			}
			return printShow(a, h, snap)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the handle and snapshot as JSON")
	return cmd
}

func printShow(a *app, h repo.Handle, s *manifest.Snapshot) error {
	var b strings.Builder
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "%-9s"+format+"\n", append([]any{k}, args...)...) }
	row("snapshot", "%s", h.ID)
	row("name", "%s", h.Name)
	row("dir", "%s", h.Dir)
	row("host", "%s", s.Host)
	row("created", "%s", formatTime(h.Created))
	row("expires", "%s", formatExpires(h))
	if h.Parent != nil {
		row("parent", "%s", *h.Parent)
	}
	row("tree", "%s", s.Tree)
	sum := s.Summary
	row("files", "%d (%d dirs, %d symlinks, %d other), %s", sum.Files, sum.Dirs, sum.Symlinks, sum.Other, formatBytes(sum.Bytes))
	row("new", "%d blobs, %s", sum.BlobsNew, formatBytes(sum.BytesNew))
	if sum.Skipped > 0 {
		row("skipped", "%d entries", sum.Skipped)
	}
	_, err := a.stdout.Write([]byte(b.String()))
	return err
}
