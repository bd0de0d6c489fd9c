#!/usr/bin/env python
"""Example batch feed for a delivery optimizer: every complete minute, once, in order.

Each poll asks Elasticsearch which minutes are complete (the pipeline's completeness signal, see
clickagg.query), processes every complete minute after the one recorded in a small checkpoint
file, oldest first, and only then records that minute. So a poller that was down catches up on
everything it missed, and a restart never repeats a minute it had recorded. (A crash after
processing a minute but before recording it repeats that one minute on restart: make the
optimizer's update idempotent per minute, or store its result and the checkpoint together.)

"Processing" here prints the top articles by CTR within each segment for that minute; replace
`handle_minute` with the call into your optimizer.

    python examples/optimizer_poller.py --interval 60 --checkpoint optimizer.checkpoint.json
    python examples/optimizer_poller.py --once --json       # one poll, JSON lines, then exit

Environment: ELASTICSEARCH_URL, ES_INDEX (as for the worker); flags override them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from elastic_transport import TransportError
from elasticsearch import ApiError

from clickagg import config
from clickagg.core.documents import iso
from clickagg.query import QueryError, SyncQueryClient, TopBySegment, describe_error, parse_gender, parse_time

log = logging.getLogger("optimizer_poller")


def load_checkpoint(path: Path) -> int | None:
    """Start of the last processed minute (epoch ms), or None before the first one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return int(data["last_processed_ms"])


def save_checkpoint(path: Path, minute_ms: int) -> None:
    """Atomic: a temp file in the same directory, fsynced, renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"last_processed_ms": minute_ms, "last_processed": iso(minute_ms)})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def pending_minutes(client: SyncQueryClient, checkpoint: int | None, start: str) -> list[int]:
    """Complete minutes not processed yet, oldest first.

    Without a checkpoint, --start decides where history begins: `latest` (only the newest complete
    minute), `earliest` (the first minute with data) or a time (that minute onwards).
    """
    if checkpoint is not None:
        return client.final_minutes(after_ms=checkpoint)
    if start == "earliest":
        return client.final_minutes(None)
    if start == "latest":
        last = client.completeness().last_complete_minute_ms
        return [] if last is None else [last]
    window = client.completeness().window_ms
    first = parse_time(start) // window * window
    return client.final_minutes(after_ms=first - 1)


def handle_minute(minute_ms: int, top: TopBySegment, as_json: bool) -> None:
    """Hand one minute's per-segment ranking to the optimizer (here: print it)."""
    if as_json:
        print(json.dumps({"minute": iso(minute_ms), "minute_ms": minute_ms, **top.to_dict()}), flush=True)
        return
    print(f"minute {iso(minute_ms)}: {len(top.segments)} segment(s) with articles", flush=True)
    for seg in top.segments:
        label = "null" if seg.segment_id is None else seg.segment_id
        ranked = ", ".join(f"{a.article_id} ({a.clicks}/{a.impressions}={a.ctr:.3f})" for a in seg.articles)
        print(f"  segment {label}: {ranked}", flush=True)


def poll_once(client: SyncQueryClient, args: argparse.Namespace) -> int:
    """Process every pending complete minute; returns how many. Checkpoint after each one."""
    checkpoint_path = Path(args.checkpoint)
    processed = 0
    while True:
        checkpoint = load_checkpoint(checkpoint_path)
        minutes = pending_minutes(client, checkpoint, args.start)
        if checkpoint is not None:
            minutes = [m for m in minutes if m > checkpoint]  # belt and braces: never go backwards
        if not minutes:
            return processed
        window = client.completeness().window_ms
        for minute in minutes:
            top = client.top_by_segment(
                minutes=1,
                k=args.k,
                gender=parse_gender(args.gender),
                min_impressions=args.min_impressions,
                end_ms=minute + window,
            )
            handle_minute(minute, top, args.json)
            save_checkpoint(checkpoint_path, minute)  # only after the minute was handled
            processed += 1
        # loop: more minutes may have completed meanwhile, or the batch was capped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--es-url", default=os.environ.get("ELASTICSEARCH_URL", "http://localhost:9200"))
    p.add_argument("--index", default=os.environ.get("ES_INDEX", "clickstream-minutely"))
    p.add_argument("--checkpoint", default="optimizer.checkpoint.json", help="last processed minute (JSON)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between polls (60)")
    p.add_argument("--once", action="store_true", help="poll once, process what is complete, exit")
    p.add_argument(
        "--start",
        default="latest",
        help="without a checkpoint: latest | earliest | an ISO 8601 time or epoch ms (default latest)",
    )
    p.add_argument("--k", type=int, default=10, help="articles per segment (10)")
    p.add_argument("--gender", help="only this gender ('null': users not in the reference data)")
    p.add_argument("--min-impressions", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON line per processed minute")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 0


def run(args: argparse.Namespace) -> int:
    # The worker's own settings (ELASTICSEARCH_API_KEY, _CA_CERTS, ELASTIC_CLOUD_ID, ... and *_FILE),
    # with this script's --es-url and --index on top: the one client factory, clickagg.clients.
    settings = config.load(elasticsearch_url=args.es_url, es_index=args.index)
    with SyncQueryClient.from_settings(settings) as client:
        while True:
            try:
                n = poll_once(client, args)
                log.info("processed %d minute(s); checkpoint %s", n, load_checkpoint(Path(args.checkpoint)))
            except QueryError as exc:
                log.error("bad request: %s", exc)
                return 2
            except (TransportError, ApiError) as exc:
                log.warning("elasticsearch failed (%s); will retry", describe_error(exc))
                if args.once:
                    return 1
            if args.once:
                return 0
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
