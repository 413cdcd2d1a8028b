#!/usr/bin/env bash
# Fuzzes the real gateway binary from openapi.yaml with schemathesis: every check
# (no 5xx, status codes, content types, headers and bodies as the spec says, negative
# input refused, positive input accepted, stateful links), first as an admin, then as a
# customer. Run inside infra/scripts/with-stack.sh (needs DYNAMODB_ENDPOINT).
# Two stateful checks are off because their premise does not hold for this API (the
# stateful phase ignores per-operation settings, so they are excluded here rather than in
# infra/schemathesis.toml): "use after free" assumes DELETE removes a resource, while
# DELETE /api/reservations/{id} releases a hold that stays readable as `released`; and
# "created resource not found" takes docs/api.md's 404 for a negative delta on a warehouse
# the new product lacks for a missing product. Integration tests cover both behaviours.
# One worker: with two, schemathesis's threads call ast.parse concurrently, which this
# machine's CPython 3.11.7 can abort with "SystemError: AST constructor recursion depth
# mismatch" (a data race fixed in 3.11.8, CPython gh-106905), failing a CI run on a fluke.
#   fuzz.sh MAX_EXAMPLES
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
examples=${1:-20}
# Where cargo put the binaries (make passes it; CARGO_TARGET_DIR or cargo's configuration
# may move it from target/).
target=${TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log="$root/.local/fuzz-gateway-$port.log"
export JWT_SECRET=fuzz-secret TABLE_NAME="fuzz-$port" LOG_FORMAT=text RUST_LOG=warn
PORT=$port "$target/debug/gateway" >"$log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null; wait $gw 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/api/products" >/dev/null && break
  kill -0 $gw 2>/dev/null || { cat "$log" >&2; echo "fuzz: gateway failed to start" >&2; exit 1; }
  sleep 0.1
done
token() { "$target/debug/token" "$1" "$2"; }
for who in "fuzz-admin admin" "fuzz-customer -"; do
  set -- $who
  groups=$2; [ "$groups" = "-" ] && groups=""
  echo "fuzz: schemathesis as $1, $examples examples per operation" >&2
  "$root/.venv/bin/schemathesis" --config-file "$root/infra/schemathesis.toml" \
    run "$root/openapi.yaml" --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $(token "$1" "$groups")" \
    --checks all --exclude-checks ensure_resource_availability,use_after_free \
    --max-examples "$examples" --workers 1 --seed 1 --no-color
done
if grep -q "panicked" "$log"; then cat "$log" >&2; echo "fuzz: the gateway panicked" >&2; exit 1; fi
if grep -q "AccessDenied" "$log"; then grep "AccessDenied" "$log" >&2; echo "fuzz: a call was refused by template.yaml's IAM policy" >&2; exit 1; fi
