#!/usr/bin/env bash
# Builds and runs the S3 server that the tests use: versitygw, pinned, with
# its posix backend in a temporary folder, on 127.0.0.1 and a free port.
#
# Sourced by scripts/test.sh, which calls s3server_build, s3server_start
# and s3server_stop. Run directly (bash scripts/s3server.sh), it starts a
# server, prints the variables that point the tests at it, and runs until
# Ctrl-C: handy for `go test ./store/s3/` during development.
#
# Needs only Go and the module proxy: versitygw is built from source into
# .cache/bin (ignored by git) and rebuilt only when that binary is missing
# or another version.

S3SERVER_MODULE=github.com/versity/versitygw
S3SERVER_VERSION=v1.8.0
S3SERVER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S3SERVER_BIN="$S3SERVER_ROOT/.cache/bin/versitygw"
# Fixed test credentials: the server listens on the loopback only.
S3SERVER_ACCESS_KEY=sandsnap-test-access
S3SERVER_SECRET_KEY=sandsnap-test-secret
S3SERVER_REGION=us-east-1
S3SERVER_BUCKET=sandsnap-test
S3SERVER_PID=
S3SERVER_DIR=
S3SERVER_LOG=
S3SERVER_ENDPOINT=

s3server_log() { echo "s3server: $*" >&2; }

# s3server_build installs versitygw $S3SERVER_VERSION into .cache/bin unless
# the binary there already is that version (go version -m reads the module
# version that the Go toolchain stamped into it).
s3server_build() {
	if [[ -x "$S3SERVER_BIN" ]] &&
		go version -m "$S3SERVER_BIN" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+$S3SERVER_MODULE[[:space:]]+$S3SERVER_VERSION[[:space:]]"; then
		return 0
	fi
	s3server_log "building versitygw $S3SERVER_VERSION into $(dirname "$S3SERVER_BIN") (once; takes a few minutes)"
	mkdir -p "$(dirname "$S3SERVER_BIN")"
	# go install pkg@version ignores the current module; GOFLAGS could
	# still carry -mod settings meant for it.
	GOFLAGS= GOBIN="$(dirname "$S3SERVER_BIN")" go install "$S3SERVER_MODULE/cmd/versitygw@$S3SERVER_VERSION"
}

# s3server_port_open PORT: whether something accepts connections on it.
s3server_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# s3server_spawn PORT [POSIX FLAGS...]: starts versitygw in the background
# and waits (at most 60 s) until it accepts connections. Returns 1 if it
# exited instead.
s3server_spawn() {
	local port=$1
	shift
	: >"$S3SERVER_LOG"
	ROOT_ACCESS_KEY="$S3SERVER_ACCESS_KEY" ROOT_SECRET_KEY="$S3SERVER_SECRET_KEY" \
		"$S3SERVER_BIN" --port "127.0.0.1:$port" --region "$S3SERVER_REGION" \
		posix "$@" "$S3SERVER_DIR/data" >>"$S3SERVER_LOG" 2>&1 &
	S3SERVER_PID=$!
	local i
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$S3SERVER_PID" 2>/dev/null; then
			wait "$S3SERVER_PID" 2>/dev/null || true
			S3SERVER_PID=
			return 1
		fi
		if s3server_port_open "$port"; then
			return 0
		fi
		sleep 0.1
	done
	s3server_log "versitygw did not accept connections on port $port within 60 s"
	return 2
}

# s3server_start starts the server, creates $S3SERVER_BUCKET and sets
# S3SERVER_ENDPOINT. Call s3server_stop afterwards (test.sh traps EXIT).
s3server_start() {
	mkdir -p "$S3SERVER_ROOT/.cache"
	# Under .cache rather than /tmp: the posix backend keeps metadata in
	# extended attributes, which the repository's file system is more
	# likely to support than a tmpfs.
	S3SERVER_DIR="$(mktemp -d "$S3SERVER_ROOT/.cache/s3server.XXXXXX")"
	S3SERVER_LOG="$S3SERVER_DIR/server.log"
	mkdir -p "$S3SERVER_DIR/data" "$S3SERVER_DIR/sidecar"
	local try port rc flags=()
	for ((try = 0; try < 10; try++)); do
		port=$((20000 + RANDOM % 40000))
		if s3server_port_open "$port"; then
			continue
		fi
		rc=0
		s3server_spawn "$port" "${flags[@]}" || rc=$?
		if ((rc == 0)); then
			S3SERVER_ENDPOINT="http://127.0.0.1:$port"
			break
		fi
		if ((rc == 2)); then
			return 1
		fi
		if grep -q "xattr check failed" "$S3SERVER_LOG" && ((${#flags[@]} == 0)); then
			s3server_log "no extended attributes in $S3SERVER_DIR: keeping metadata in a sidecar folder"
			flags=(--sidecar "$S3SERVER_DIR/sidecar")
		elif ! grep -qi "address already in use" "$S3SERVER_LOG"; then
			s3server_log "versitygw exited at start:"
			tail -n 20 "$S3SERVER_LOG" >&2
			return 1
		fi
	done
	if [[ -z "$S3SERVER_ENDPOINT" ]]; then
		s3server_log "could not start versitygw on a free port"
		return 1
	fi
	s3server_log "versitygw $S3SERVER_VERSION on $S3SERVER_ENDPOINT (pid $S3SERVER_PID, folder $S3SERVER_DIR)"
	(
		cd "$S3SERVER_ROOT"
		AWS_ACCESS_KEY_ID="$S3SERVER_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3SERVER_SECRET_KEY" \
			AWS_REGION="$S3SERVER_REGION" AWS_EC2_METADATA_DISABLED=true \
			go run ./scripts/s3ready -endpoint "$S3SERVER_ENDPOINT" -timeout 60s "$S3SERVER_BUCKET"
	)
}

# s3server_env exports the variables that point the tests at the server.
s3server_env() {
	export SANDSNAP_TEST_S3_ENDPOINT="$S3SERVER_ENDPOINT"
	export SANDSNAP_TEST_S3_BUCKET="$S3SERVER_BUCKET"
	export AWS_ACCESS_KEY_ID="$S3SERVER_ACCESS_KEY"
	export AWS_SECRET_ACCESS_KEY="$S3SERVER_SECRET_KEY"
	export AWS_REGION="$S3SERVER_REGION"
	export AWS_EC2_METADATA_DISABLED=true
	# Credentials from elsewhere must not mix with the test keys.
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
}

# s3server_log_tail prints the end of the server's log.
s3server_log_tail() {
	if [[ -n "$S3SERVER_LOG" && -s "$S3SERVER_LOG" ]]; then
		s3server_log "last lines of $S3SERVER_LOG:"
		tail -n "${1:-40}" "$S3SERVER_LOG" >&2
	fi
}

# s3server_stop stops the server and removes its folder. Safe to call
# more than once, and before s3server_start.
s3server_stop() {
	if [[ -n "$S3SERVER_PID" ]]; then
		kill "$S3SERVER_PID" 2>/dev/null || true
		wait "$S3SERVER_PID" 2>/dev/null || true
		S3SERVER_PID=
	fi
	if [[ -n "$S3SERVER_DIR" && -d "$S3SERVER_DIR" ]]; then
		rm -rf "$S3SERVER_DIR"
		S3SERVER_DIR=
	fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	trap s3server_stop EXIT
	trap 'exit 130' INT TERM
	s3server_build
	s3server_start
	s3server_env
	cat <<EOF
export SANDSNAP_TEST_S3_ENDPOINT=$SANDSNAP_TEST_S3_ENDPOINT
export SANDSNAP_TEST_S3_BUCKET=$SANDSNAP_TEST_S3_BUCKET
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_REGION=$AWS_REGION
export AWS_EC2_METADATA_DISABLED=true
EOF
	s3server_log "running until Ctrl-C; log: $S3SERVER_LOG"
	wait "$S3SERVER_PID"
fi
