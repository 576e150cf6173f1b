package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sandsnap/sandsnap/repo"
)

func (a *app) diffCmd() *cobra.Command {
	var content, asJSON bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "List what changed from one snapshot to another or to a directory",
		Long: `diff lists the paths that differ from snapshot A to B, one per line:
"+ path" added, "- path" removed, "M path (what, ...)" changed, then a
summary line. A is a HANDLE. B is a directory if it names one (it is then
compared as a backup would see it, by lstat, without following symlinks),
otherwise a HANDLE.

A file whose size and mtime match is taken as unchanged without being
read; --content reads every file of directory B and compares its chunks.

The exit status is 0 whether or not there are differences, 1 on error.`,
		Args: argsNamed("A", "B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a.useCache = true
			s, err := a.open(ctx, openExisting)
			if err != nil {
				return err
			}
			from, err := s.resolve(ctx, args[0], a.stdin)
			if err != nil {
				return err
			}
			changes := []repo.Change{}
			collect := func(c repo.Change) error {
				changes = append(changes, c)
				return nil
			}
			if fi, err := os.Stat(args[1]); err == nil && fi.IsDir() {
				err = s.r.DiffDir(ctx, from, args[1], repo.DiffOptions{Content: content}, collect)
				if err != nil {
					return err
				}
			} else {
				to, err := s.resolve(ctx, args[1], a.stdin)
				if err != nil {
					return err
				}
				if err := s.r.Diff(ctx, from, to, collect); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(a.stdout, changes)
			}
			return printDiff(a, changes)
		},
	}
	cmd.Flags().BoolVar(&content, "content", false, "when B is a directory, read its files and compare their content")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the changes as a JSON array")
	return cmd
}

func printDiff(a *app, changes []repo.Change) error {
	var b strings.Builder
	var added, removed, changed int
	for _, c := range changes {
		p := displayPath(c.Path)
		switch c.Kind {
		case repo.ChangeAdded:
			added++
			fmt.Fprintf(&b, "+ %s\n", p)
		case repo.ChangeRemoved:
			removed++
			fmt.Fprintf(&b, "- %s\n", p)
		default:
			changed++
			fmt.Fprintf(&b, "M %s (%s)\n", p, strings.Join(c.What, ", "))
		}
	}
	fmt.Fprintf(&b, "%d added, %d removed, %d changed\n", added, removed, changed)
	_, err := a.stdout.Write([]byte(b.String()))
	return err
}

// displayPath keeps one change on one line: a path that holds a newline,
// another control character or invalid UTF-8 (names may hold any byte
// but "/" and NUL) is printed Go-quoted.
func displayPath(p string) string {
	if utf8.ValidString(p) && strings.IndexFunc(p, unicode.IsControl) < 0 && !strings.HasPrefix(p, `"`) {
		return p
	}
	return strconv.Quote(p)
}
