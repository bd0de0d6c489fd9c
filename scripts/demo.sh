#!/usr/bin/env bash
# Run clickagg on the local real stack and show per-minute results from Elasticsearch.
source "$(dirname "$0")/_env.sh"
clickagg stack up
export APP_ID="${APP_ID:-clickagg-demo}" EVENTS_TOPIC="${EVENTS_TOPIC:-user-activity}"
export REFERENCE_DATA="${REFERENCE_DATA:-$ROOT/examples/data/users.csv}"
export IDLE_TIMEOUT_SECONDS="${IDLE_TIMEOUT_SECONDS:-5}" ALLOWED_LATENESS_SECONDS="${ALLOWED_LATENESS_SECONDS:-5}"
mkdir -p .clickagg
clickagg worker > .clickagg/demo-worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
python - <<'PY'
import os, sys, time, urllib.request
url = f"http://localhost:{os.environ.get('WEB_PORT', '6066')}/readyz"
for _ in range(120):
    try:
        if urllib.request.urlopen(url, timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit("the worker did not become ready; see .clickagg/demo-worker.log")
PY
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
echo "worker log: .clickagg/demo-worker.log. While a worker runs: live page http://localhost:6066/dashboard, metrics /metrics, API /api/openapi.json. Stop the stack: .venv/bin/clickagg stack down"
