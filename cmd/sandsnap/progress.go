package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sandsnap/sandsnap/repo"
)

const (
	// progressDelay: work that ends sooner draws nothing, so quick
	// commands print exactly what they printed before.
	progressDelay = time.Second
	// progressTick is how often the bar polls repo.Progress.
	progressTick = 150 * time.Millisecond
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress draws a bar for p on stderr if stderr is a terminal and
// the work lasts longer than progressDelay. The returned stop function
// erases the bar and must be called before anything else is printed.
func (a *app) startProgress(p *repo.Progress, verb string) (stop func()) {
	if !isTerminal(a.stderr) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		delay := time.NewTimer(progressDelay)
		defer delay.Stop()
		select {
		case <-done:
			return
		case <-delay.C:
		}
		bar := progressbar.NewOptions64(max(p.TotalBytes.Load(), 1),
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(progressTick),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)
		tick := time.NewTicker(progressTick)
		defer tick.Stop()
		for {
			// Totals grow while a backup walks, so the bar's maximum
			// follows them; it stays above the count so that the bar
			// never finishes (and clears itself) early.
			n := p.Bytes.Load()
			if total := max(p.TotalBytes.Load(), n+1); total != bar.GetMax64() {
				bar.ChangeMax64(total)
			}
			bar.Describe(fmt.Sprintf("%s %d/%d files", verb, p.Files.Load(), p.TotalFiles.Load()))
			_ = bar.Set64(n)
			select {
			case <-done:
				_ = bar.Clear()
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
