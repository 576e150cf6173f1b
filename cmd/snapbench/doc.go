// Command snapbench measures sandsnap against tar, zstd, cp, find and restic
// on the same data in the same run, and checks the performance targets.
//
//	snapbench                          quick run: a small workspace, fork-4 (under a minute on 2 cores)
//	snapbench --full --report DIR      >= 30k files and 300 MB, fork-8; REPORT.md and SVG charts in DIR
//	snapbench --json                   one JSON object on stdout (config, scenarios, baselines, ratios, targets)
//	snapbench --dir PATH               measure a real directory (mutations go to a cp -a copy)
//	snapbench --npm                    the node workload from a real npm install
//	snapbench --repo s3://BUCKET/P     a remote repository (a fresh sub-prefix, removed afterwards)
//
// The scenarios, baselines, metrics and targets are described in
// internal/benchrun. main only parses flags and prints.
package main
