#!/usr/bin/env bash
# Times what a new developer waits for, from a fresh clone of this repository (its own
# target/, .local/ and .venv/; cargo's registry cache and pip's cache stay warm, as on any
# machine that has built a Rust project before):
#   time-setup.sh dev  [COMMIT]   clone, then `make dev` until GET /api/products answers 200
#   time-setup.sh test [COMMIT]   clone, then `make test` until it passes
# Prints the seconds; the clone is removed afterwards. Figures in README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
what=${1:?dev or test}
commit=${2:-HEAD}
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockhold-setup.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
git clone -q "$root" "$dir/repo"
git -C "$dir/repo" checkout -q "$commit"
cd "$dir/repo"
unset CARGO_TARGET_DIR
start=$(date +%s)
case "$what" in
  dev)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    set -m
    PORT=$port make dev >"$dir/dev.log" 2>&1 &
    pid=$!
    set +m
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/products")" = 200 ]; do
      kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/dev.log" >&2; echo "time-setup: make dev stopped" >&2; exit 1; }
      sleep 1
    done
    ;;
  test)
    make test >"$dir/test.log" 2>&1 || { tail -n 30 "$dir/test.log" >&2; echo "time-setup: make test failed" >&2; exit 1; }
    ;;
  *) echo "usage: time-setup.sh dev|test [COMMIT]" >&2; exit 2 ;;
esac
echo "time-setup: $what from a fresh clone of $(git rev-parse --short HEAD): $(( $(date +%s) - start )) s"
