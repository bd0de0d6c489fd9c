#!/usr/bin/env bash
# Run clickagg on the local real stack and show per-minute results from Elasticsearch.
#   scripts/demo.sh          send 20,000 events, check that Elasticsearch holds all of them, show them
#   scripts/demo.sh --live   the same, then keep the demo's worker running with a live trickle of
#                            events (produce --rate) for the live page, until Ctrl-C
# The demo is its own deployment (APP_ID clickagg-demo) with its own index, so it never mixes with
# (or is refused by) a `clickagg worker` run with the defaults on the same cluster; only the demo's
# own worker ever writes the demo's index (README "Index ownership").
source "$(dirname "$0")/_env.sh"
live=0
case "${1:-}" in
  --live) live=1 ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--live]   (DEMO_WAIT_SECONDS: how long the check waits, 120)" >&2; exit 2 ;;
esac
clickagg stack up
export APP_ID="${APP_ID:-clickagg-demo}" EVENTS_TOPIC="${EVENTS_TOPIC:-user-activity}"
export ES_INDEX="${ES_INDEX:-clickagg-demo-minutely}" WINDOW_SECONDS="${WINDOW_SECONDS:-60}"
export REFERENCE_DATA="${REFERENCE_DATA:-$ROOT/examples/data/users.csv}"
export IDLE_TIMEOUT_SECONDS="${IDLE_TIMEOUT_SECONDS:-5}" ALLOWED_LATENESS_SECONDS="${ALLOWED_LATENESS_SECONDS:-5}"
# The worker's HTTP port: WEB_PORT if given, else 6066 if free, else any free port (a worker of
# another deployment may hold 6066); every line below names the port really used.
if [ -z "${WEB_PORT:-}" ]; then
  WEB_PORT="$(python - <<'EOF'
import socket
for port in (6066, 0):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
)"
fi
export WEB_PORT
mkdir -p .clickagg
log=.clickagg/demo-worker.log
clickagg worker > "$log" 2>&1 &
worker=$!
trickle=""
trap 'kill $trickle $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
ready_url="http://localhost:$WEB_PORT/readyz"
for i in $(seq 1 120); do
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "the demo's worker exited; the end of $log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  if python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$ready_url" 2>/dev/null; then
    break
  fi
  if [ "$i" = 120 ]; then
    echo "the demo's worker did not become ready within 60 s; see $log" >&2
    exit 1
  fi
  sleep 0.5
done
sent=20000
clickagg produce --count "$sent" --minutes 3 --users 1000 --articles 50
echo "waiting for the windows to close (idle timeout ${IDLE_TIMEOUT_SECONDS}s)..."
# Done when the newest complete minutes hold every event we sent (impressions + clicks).
counted=0
wait_s="${DEMO_WAIT_SECONDS:-120}"
deadline=$((SECONDS + wait_s))
while [ "$SECONDS" -lt "$deadline" ]; do
  sleep 2
  counted="$(clickagg query latest --minutes 5 --json 2>/dev/null \
    | python -c 'import json,sys; print(sum(m["impressions"]+m["clicks"] for m in json.load(sys.stdin)))' 2>/dev/null || echo 0)"
  if [ "$counted" = "$sent" ]; then
    break
  fi
done
if [ "$counted" != "$sent" ]; then
  echo "demo check failed: the complete minutes in ES_INDEX=$ES_INDEX hold $counted events, not the $sent sent, after ${wait_s} s; see $log" >&2
  exit 1
fi
clickagg query latest --minutes 5
clickagg query top --minutes 5 --k 5 --min-impressions 50
echo "The check passed: all $sent events are counted in ES_INDEX=$ES_INDEX, owned by the demo's deployment APP_ID=$APP_ID (worker log: $log)."
if [ "$live" = 1 ]; then
  clickagg produce --count 100000000 --rate 50 --users 1000 --articles 50 > /dev/null &
  trickle=$!
  echo "Live: 50 events/s into the demo's worker. Open http://localhost:$WEB_PORT/dashboard (API http://localhost:$WEB_PORT/api/openapi.json, metrics http://localhost:$WEB_PORT/metrics); Ctrl-C stops the demo's worker."
  wait "$worker"
  exit $?
fi
echo "The demo's worker (http://localhost:$WEB_PORT) has stopped; for the live page run scripts/demo.sh --live (the same deployment, kept running). Stop the stack: .venv/bin/clickagg stack down"
