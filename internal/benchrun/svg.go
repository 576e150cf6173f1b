package benchrun

import (
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// bar is one bar of a chart.
type bar struct {
	label string
	value float64
	text  string // printed after the bar
	color string // fill; "" is the default blue
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 920
	labelWidth  = 420
	valueWidth  = 90
	rowHeight   = 22
	titleHeight = 34
	ratioClip   = 3 // longest bar of the ratio chart
)

// barChart draws horizontal bars scaled to the largest value. A positive
// ref draws a dashed reference line at that value (1x for ratios).
func barChart(title string, bars []bar, ref float64) string {
	maxV := ref
	for _, b := range bars {
		maxV = math.Max(maxV, b.value)
	}
	if maxV <= 0 {
		maxV = 1
	}
	plot := float64(chartWidth - labelWidth - valueWidth)
	height := titleHeight + rowHeight*len(bars) + 10
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&s, `<text x="10" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", esc(title))
	for i, b := range bars {
		y := titleHeight + i*rowHeight
		w := math.Max(0, b.value) / maxV * plot
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelWidth-8, y+15, esc(b.label))
		color := b.color
		if color == "" {
			color = "#3b7dd8"
		}
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelWidth, y+3, w, rowHeight-6, color)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelWidth)+w+6, y+15, esc(b.text))
	}
	if ref > 0 {
		x := float64(labelWidth) + ref/maxV*plot
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d33" stroke-dasharray="4 3"/>`+"\n",
			x, titleHeight, x, height-6)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// esc escapes s for XML text and attributes.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// charts are the SVG files of a report, by file name.
func (r *Report) charts() map[string]string {
	var thr, up, ratios []bar
	for _, s := range r.Scenarios {
		if s.NA != "" {
			continue
		}
		thr = append(thr, bar{label: s.Name, value: s.MBPerSec, text: fmtRate(s.MBPerSec) + " MB/s"})
		up = append(up, bar{label: s.Name, value: float64(s.Store.BytesUp), text: fmtBytes(s.Store.BytesUp)})
	}
	for _, x := range r.Ratios {
		color := "#2e9e5b" // sandsnap wins
		if x.Ratio > 1 {
			color = "#d9822b"
		}
		label := x.Label()
		if res, ok := findResult(r.Scenarios, x.Scenario); ok {
			label = fmt.Sprintf("%s %s / %s", res.Name, x.Metric, x.Baseline)
		}
		// Clip so that one outlier does not flatten the other bars; the
		// text keeps the true value.
		ratios = append(ratios, bar{label: label, value: math.Min(x.Ratio, ratioClip), text: fmtFactor(x.Ratio), color: color})
	}
	return map[string]string{
		"throughput.svg": barChart("Throughput per scenario (logical MB/s)", thr, 0),
		"uploaded.svg":   barChart("Bytes uploaded per scenario", up, 0),
		"ratios.svg":     barChart("sandsnap / baseline (below the red line: sandsnap wins)", ratios, 1),
	}
}

// WriteDir writes REPORT.md and its SVG charts into dir.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir %s: %w", dir, err)
	}
	for name, svg := range r.charts() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(svg), 0o644); err != nil {
			return fmt.Errorf("report %s: %w", name, err)
		}
	}
	p := filepath.Join(dir, "REPORT.md")
	if err := os.WriteFile(p, []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("report %s: %w", p, err)
	}
	return nil
}

// Markdown renders the report with links to the charts of WriteDir.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# sandsnap benchmark\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.Command != "" {
		fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	}
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s, %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.GoVersion)
	fmt.Fprintf(&b, "- %s\n", r.summary())
	m := r.Mutation
	fmt.Fprintf(&b, "- Mutation %s: %d edited, %d added, %d deleted, %d touched, %s of new content\n\n",
		m.Kind, m.Changed, m.Added, m.Deleted, m.Touched, fmtBytes(m.DirtyBytes))
	b.WriteString("## Scenarios\n\n" + r.scenarioTable().markdown() + "\n")
	if line := r.procLine(); line != "" {
		b.WriteString(line + "\n\n")
	}
	if line := r.gcLine(); line != "" {
		b.WriteString(line + "\n\n")
	}
	b.WriteString("![throughput](throughput.svg)\n\n![uploaded](uploaded.svg)\n\n")
	b.WriteString("## Baselines\n\n" + r.baselineTable().markdown() + "\n")
	b.WriteString("## Ratios\n\n" + r.ratioTable().markdown() + "\n![ratios](ratios.svg)\n\n")
	b.WriteString("## Targets\n\n```\n")
	for _, t := range r.Targets {
		b.WriteString(t.String() + "\n")
	}
	b.WriteString("```\n\n## Method\n\n")
	for _, n := range r.Notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}
