#!/usr/bin/env bash
# Run clickagg on the local real stack and show per-minute results from Elasticsearch.
# The demo is its own deployment (APP_ID clickagg-demo) with its own index, so it never mixes with
# (or is refused by) a `clickagg worker` run with the defaults on the same cluster.
source "$(dirname "$0")/_env.sh"
clickagg stack up
export APP_ID="${APP_ID:-clickagg-demo}" EVENTS_TOPIC="${EVENTS_TOPIC:-user-activity}"
export ES_INDEX="${ES_INDEX:-clickagg-demo-minutely}" WINDOW_SECONDS="${WINDOW_SECONDS:-60}"
export REFERENCE_DATA="${REFERENCE_DATA:-$ROOT/examples/data/users.csv}"
export IDLE_TIMEOUT_SECONDS="${IDLE_TIMEOUT_SECONDS:-5}" ALLOWED_LATENESS_SECONDS="${ALLOWED_LATENESS_SECONDS:-5}"
mkdir -p .clickagg
clickagg worker > .clickagg/demo-worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
ready_url="http://localhost:${WEB_PORT:-6066}/readyz"
for i in $(seq 1 120); do
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "the worker exited; the end of .clickagg/demo-worker.log:" >&2
    tail -n 5 .clickagg/demo-worker.log >&2
    exit 1
  fi
  if python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$ready_url" 2>/dev/null; then
    break
  fi
  if [ "$i" = 120 ]; then
    echo "the worker did not become ready; see .clickagg/demo-worker.log" >&2
    exit 1
  fi
  sleep 0.5
done
clickagg produce --count 20000 --minutes 3 --users 1000 --articles 50
echo "waiting for the windows to close (idle timeout ${IDLE_TIMEOUT_SECONDS}s)..."
# Done when the newest complete minutes hold every event we sent (impressions + clicks = 20000).
for _ in $(seq 1 60); do
  sleep 2
  if clickagg query latest --minutes 5 --json | python -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if sum(m["impressions"]+m["clicks"] for m in r)==20000 else 1)'; then
    break
  fi
done
clickagg query latest --minutes 5
clickagg query top --minutes 5 --k 5 --min-impressions 50
demo_env="APP_ID=$(printf %q "$APP_ID") ES_INDEX=$(printf %q "$ES_INDEX") EVENTS_TOPIC=$(printf %q "$EVENTS_TOPIC")"
demo_env+=" WINDOW_SECONDS=$WINDOW_SECONDS ALLOWED_LATENESS_SECONDS=$ALLOWED_LATENESS_SECONDS"
demo_env+=" IDLE_TIMEOUT_SECONDS=$IDLE_TIMEOUT_SECONDS REFERENCE_DATA=$(printf %q "$REFERENCE_DATA")"
echo "The demo's results are in ES_INDEX=$ES_INDEX, owned by its deployment APP_ID=$APP_ID (worker log: .clickagg/demo-worker.log)."
echo "To watch them on the live page, run the demo's deployment again: $demo_env .venv/bin/clickagg worker"
echo "and open http://localhost:${WEB_PORT:-6066}/dashboard (metrics /metrics, API /api/openapi.json). Stop the stack: .venv/bin/clickagg stack down"
