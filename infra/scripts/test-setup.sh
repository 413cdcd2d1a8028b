#!/usr/bin/env bash
# The setup paths a new developer's machine takes, which `make test` on ours does not:
#  1. deps.sh as a user who is neither root nor a sudoer, on a machine without Java (and
#     with the macOS-style `java` stub that only prints a dialog): it must stop with the
#     one message naming the package for apt, dnf and brew, and change nothing. As root
#     this runs as a throwaway user; otherwise as the current user with `sudo` refused.
#  2. A shared cargo target folder (CARGO_TARGET_DIR set): in a fresh clone of HEAD,
#     `make test`'s fuzz step and `make dev`'s start find the binaries where cargo put
#     them (the clone gets no target/ of its own), and the original checkout still
#     builds from the same folder afterwards.
# `make test-setup`; CI runs it after `make test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')}
work=$(mktemp -d "${TMPDIR:-/tmp}/stockhold-test-setup.XXXXXX")
user=""
dev_pid=""
cleanup() {
  if [ -n "$dev_pid" ]; then kill -TERM -- "-$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  if [ -n "$user" ]; then userdel -r "$user" >/dev/null 2>&1 || userdel "$user" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-setup: FAIL: $*" >&2; exit 1; }

echo "test-setup: deps.sh without root, sudo or Java" >&2
mkdir -p "$work/deps/repo/infra/scripts" "$work/deps/bin"
cp "$root/infra/scripts/deps.sh" "$work/deps/repo/infra/scripts/"
cp "$root/infra/requirements.txt" "$root/infra/requirements-deploy.txt" "$work/deps/repo/infra/"
# What macOS's /usr/bin/java does without a JDK; and a sudo that wants a password.
printf '#!/bin/sh\necho "The operation could not be completed. Unable to locate a Java Runtime." >&2\nexit 1\n' >"$work/deps/bin/java"
printf '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n' >"$work/deps/bin/sudo"
chmod -R a+rX "$work" && chmod a+x "$work/deps/bin/"*
run_deps=(env -i HOME="$work/deps" PATH="$work/deps/bin:/usr/bin:/bin" bash "$work/deps/repo/infra/scripts/deps.sh" dev)
if [ "$(id -u)" = 0 ]; then
  user="stockhold-t$$"
  useradd --no-create-home --home-dir "$work/deps" --shell /bin/bash "$user"
  run_deps=(runuser -u "$user" -- "${run_deps[@]}")
fi
set +e
"${run_deps[@]}" </dev/null >"$work/deps/out" 2>&1
rc=$?
set -e
cat "$work/deps/out" >&2
[ "$rc" -ne 0 ] || fail "deps.sh succeeded without Java"
for expected in "Java 17 or newer is missing" "needs root or sudo" \
    "sudo apt-get install openjdk-17-jre-headless" "sudo dnf install java-17-openjdk-headless" \
    "brew install openjdk@17"; do
  grep -qF "$expected" "$work/deps/out" || fail "deps.sh did not say: $expected"
done
[ ! -e "$work/deps/repo/.local" ] && [ ! -e "$work/deps/repo/.venv" ] || fail "deps.sh installed something before stopping"

echo "test-setup: deploying installs only what deploying needs" >&2
for t in deploy logs lambda; do
  plan=$(make -n -C "$root" "$t" 2>/dev/null)
  grep -q "deps.sh deploy" <<<"$plan" || fail "make $t does not install with deps.sh deploy"
  ! grep -Eq "deps.sh (test|dev|all)" <<<"$plan" || fail "make $t installs the test tools"
done
! grep -Eiq "^(moto|schemathesis)" "$root/infra/requirements-deploy.txt" || fail "requirements-deploy.txt holds test tools"

echo "test-setup: a fresh clone with CARGO_TARGET_DIR=$target" >&2
git clone -q "$root" "$work/clone"
# The tools are the same as here: lend them instead of installing them again.
ln -s "$root/.venv" "$work/clone/.venv"
mkdir -p "$work/clone/.local"
ln -s "$root/.local/ddb" "$work/clone/.local/ddb"
ln -s "$root/.local/docs" "$work/clone/.local/docs"
export CARGO_TARGET_DIR="$target"
make -C "$work/clone" fuzz-quick FUZZ_EXAMPLES=1 >"$work/fuzz.log" 2>&1 || { tail -n 40 "$work/fuzz.log" >&2; fail "make fuzz-quick with CARGO_TARGET_DIR"; }
# `make dev` builds `-p gateway`, whose feature set differs from the workspace build's
# (the tests' dependencies add features), so the first `make dev` after a workspace build
# compiles the gateway's own variant of the SDK tree: minutes on two cores. Built here
# first, with make dev's own command, so that the wait below times the start alone.
(cd "$work/clone" && cargo build -q -p gateway --bin gateway) >"$work/build-dev.log" 2>&1 \
  || { tail -n 40 "$work/build-dev.log" >&2; fail "building the gateway with CARGO_TARGET_DIR"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set -m
PORT=$port make -C "$work/clone" dev >"$work/dev.log" 2>&1 &
dev_pid=$!
set +m
# Waits for the server's first answer: the build is already done, so this is the start.
for _ in $(seq 1 600); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/products")" = 200 ] && break
  kill -0 "$dev_pid" 2>/dev/null || { tail -n 40 "$work/dev.log" >&2; fail "make dev with CARGO_TARGET_DIR stopped"; }
  sleep 0.2
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/products")" = 200 ] || { tail -n 40 "$work/dev.log" >&2; fail "make dev did not answer"; }
[ ! -e "$work/clone/target" ] || fail "something was built into the clone's target/ instead of CARGO_TARGET_DIR"
# make dev leaves the functions' environment, with its DynamoDB Local port, for
# `cargo lambda watch --env-file .local/dev.env`.
endpoint=$(sed -n 's/^DYNAMODB_ENDPOINT=//p' "$work/clone/.local/dev.env" 2>/dev/null)
[ -n "$endpoint" ] && curl -s -o /dev/null "$endpoint" || fail "make dev wrote no .local/dev.env naming its DynamoDB Local (got '$endpoint')"
# The README's walk-through, as pasted, against this make dev: every step answers 2xx.
awk '/^## Walk-through/{w=1} w&&/^```sh$/{f=1;next} f&&/^```$/{exit} f' "$work/clone/README.md" >"$work/walk.sh"
[ -s "$work/walk.sh" ] || fail "no walk-through found in README.md"
sed -i 's/curl -s /curl -sf /g; s/curl -si /curl -sfi /g' "$work/walk.sh"
(cd "$work/clone" && API="http://127.0.0.1:$port" bash -euo pipefail "$work/walk.sh") >"$work/walk.log" 2>&1 \
  || { tail -n 20 "$work/walk.log" >&2; fail "the README's walk-through failed as pasted"; }
# The folder is shared: the checkout it came from must still build from it (cargo may
# reuse the clone's build scripts for it, which must not hold the clone's paths).
kill -TERM -- "-$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; dev_pid=""
rm -rf "$work/clone"
cargo build -q --manifest-path "$root/Cargo.toml" -p gateway 2>"$work/build.log" || { cat "$work/build.log" >&2; fail "the original checkout no longer builds from the shared target folder"; }
echo "test-setup: ok" >&2
