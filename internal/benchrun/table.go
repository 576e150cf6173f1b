package benchrun

import (
	"fmt"
	"math"
	"strings"
)

// table is rows of cells under a header; the first column is left-aligned
// and the rest right-aligned, as numbers read best.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// span reports whether row is a name and one note (such as "n/a") that
// runs across the numeric columns instead of filling the first of them.
func (t *table) span(row []string) bool { return len(row) == 2 && len(t.header) > 2 }

// widths are the widest cell of each column.
func (t *table) widths() []int {
	w := make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		if t.span(row) {
			row = row[:1]
		}
		for i, c := range row {
			if i < len(w) && len(c) > w[i] {
				w[i] = len(c)
			}
		}
	}
	return w
}

// text renders the table aligned with two spaces between columns.
func (t *table) text() string {
	w := t.widths()
	var b strings.Builder
	line := func(row []string) {
		if t.span(row) {
			fmt.Fprintf(&b, "%-*s  %s\n", w[0], row[0], row[1])
			return
		}
		for i := range w {
			c := ""
			if i < len(row) {
				c = row[i]
			}
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", w[i], c)
			} else {
				fmt.Fprintf(&b, "%*s", w[i], c)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	for _, r := range t.rows {
		line(r)
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// markdown renders the table as a GitHub-flavoured markdown table.
func (t *table) markdown() string {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for i := range t.header {
			c := ""
			if i < len(cells) {
				c = strings.ReplaceAll(cells[i], "|", `\|`)
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	row(t.header)
	b.WriteString("|")
	for i := range t.header {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		row(r)
	}
	return b.String()
}

// fmtBytes prints n in decimal units (MB = 10^6 bytes, as in MB/s).
func fmtBytes(n int64) string {
	f := float64(n)
	switch a := math.Abs(f); {
	case a >= 1e9:
		return fmt.Sprintf("%.2f GB", f/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.1f MB", f/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1f kB", f/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// fmtSeconds prints a duration in seconds with three significant digits.
func fmtSeconds(s float64) string {
	switch {
	case s >= 100:
		return fmt.Sprintf("%.0fs", s)
	case s >= 10:
		return fmt.Sprintf("%.1fs", s)
	case s >= 1:
		return fmt.Sprintf("%.2fs", s)
	}
	return fmt.Sprintf("%.0fms", s*1000)
}

// fmtFactor prints a ratio as "0.42x".
func fmtFactor(f float64) string {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return "-"
	case f >= 100:
		return fmt.Sprintf("%.0fx", f)
	case f >= 10:
		return fmt.Sprintf("%.1fx", f)
	}
	return fmt.Sprintf("%.2fx", f)
}

// fmtRate prints a per-second rate with a sensible precision.
func fmtRate(f float64) string {
	switch {
	case f >= 1000:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

// fmtCount prints n with thousands separators.
func fmtCount(n int64) string {
	s := fmt.Sprintf("%d", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
