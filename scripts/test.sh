#!/usr/bin/env bash
# The test command: go vet, then every test with the race detector, against
# a real S3 server (versitygw, built and started by scripts/s3server.sh on
# 127.0.0.1) so that the S3 store is always tested over HTTP.
#
#   bash scripts/test.sh                            # the whole module
#   bash scripts/test.sh ./store/...                # only these packages
#   bash scripts/test.sh ./store/s3 -- -run Suite -v  # flags for go test only
#   bash scripts/test.sh ./repo -- -run TestGCStressS3 -v -args -gcstress.rounds=20  # the long stress run
#
# A run of the whole module (no packages named) ends with a bounded fuzz run
# of the restore (FuzzRestoreTree, 20 s after its instrumented build): it
# restores arbitrary tree bytes into a target surrounded by files, symlinks
# and a hard link, and fails if anything outside the target changed. A
# failing input is written to repo/testdata/fuzz/FuzzRestoreTree/ and
# replays in every later run of the tests.
#
# Needs only Go and the module proxy. Exits with the status of vet, of the
# tests or of the fuzz run; the server is stopped in every case, and its
# log's last lines are printed when something failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/s3server.sh
source scripts/s3server.sh

pkgs=()
testflags=()
while (($# > 0)) && [[ "$1" != "--" ]]; do
	pkgs+=("$1")
	shift
done
if (($# > 0)); then
	shift # the "--"
	testflags=("$@")
fi
whole=false
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
	whole=true
fi

status=0
finish() {
	if ((status != 0)); then
		s3server_log_tail 40
	fi
	s3server_stop
}
trap 'status=$?; finish; exit $status' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

s3server_build
s3server_start
s3server_env

echo "+ go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
echo "+ go test -race -count=1 -timeout 20m ${pkgs[*]} ${testflags[*]}"
go test -race -count=1 -timeout 20m "${pkgs[@]}" "${testflags[@]}"
if $whole; then
	echo "+ go test ./repo -run '^\$' -fuzz '^FuzzRestoreTree\$' -fuzztime 20s"
	go test ./repo -run '^$' -fuzz '^FuzzRestoreTree$' -fuzztime 20s
fi
