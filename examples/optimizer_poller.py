#!/usr/bin/env python
"""Example batch feed for a delivery optimizer: every complete minute, once, in order.

Each poll asks the search engine which minutes are complete (the pipeline's completeness signal,
see clickagg.query), processes every complete minute after the one recorded in the checkpoint file,
oldest first, and only then records that minute. So a poller that was down catches up on everything
it missed, and a restart never repeats a minute it had recorded. (A crash after processing a minute
but before recording it repeats that one minute on restart: make the optimizer's update idempotent
per minute, or store its result and the checkpoint together.)

"Processing" here prints the top articles by CTR within each segment for that minute; replace
`handle_minute` with the call into your optimizer.

Ranking: only articles with at least --min-impressions impressions in the minute are ranked
(default 20, clickagg.query.DEFAULT_MIN_IMPRESSIONS), so an article shown once and clicked once
(CTR 100%) cannot top the list. A floor, not a smoothed CTR, on purpose: every CTR handed to the
optimizer stays the exact sum(click) / sum(impression) of the reference SQL, the order stays an exact
comparison of those fractions (clickagg.query.rank_articles), and whether an article is eligible
depends on its own impressions only, not on a prior that would need tuning per segment and hour. An
optimizer that wants its own smoothing gets exact inputs to apply it to (--min-impressions 1: all).

    python examples/optimizer_poller.py --interval 60 --checkpoint /var/lib/optimizer/poller.json
    python examples/optimizer_poller.py --once --json       # one poll, JSON lines, then exit

Output: one labeled line per (minute, segment, rank) on stdout, or one JSON line per minute with
--json; nothing else goes to stdout. This script's own log (what it processed, the search engine
being down or back) and any client-library line go to stderr; client libraries are quiet below
ERROR unless --debug.

Exit status: 0 done (--once) or stopped with Ctrl-C; 1 the search engine failed in --once mode
(nothing after the last recorded minute was skipped: the checkpoint says where the next run
resumes); 2 a bad flag or an unreadable checkpoint. Without --once a failed poll is retried at the
next interval (one line when the engine goes down, one when it is back).

Environment: ELASTICSEARCH_URL, ES_INDEX and the worker's other connection settings (API key, CA,
Cloud ID, ...); --es-url and --index override the first two.
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

from clickagg import config
from clickagg.app.dashboard import SEARCH_ENGINE_ERRORS, engine_failure
from clickagg.core.documents import iso
from clickagg.query import (
    DEFAULT_MIN_IMPRESSIONS,
    MAX_K,
    MAX_MIN_IMPRESSIONS,
    QueryError,
    SyncQueryClient,
    TopBySegment,
    parse_gender,
    parse_time,
)

log = logging.getLogger("optimizer_poller")

DEFAULT_CHECKPOINT = "optimizer.checkpoint.json"  # relative to the working directory
CLIENT_LIBRARIES = ("elasticsearch", "elastic_transport", "opensearchpy", "opensearch", "urllib3", "aiohttp")


class CheckpointError(Exception):
    """The checkpoint file exists but is not one this script wrote."""


def load_checkpoint(path: Path) -> int | None:
    """Start of the last processed minute (epoch ms), or None before the first one."""
    try:
        data = json.loads(path.read_text())
        return int(data["last_processed_ms"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); fix it, or delete it to "
            "start again from --start"
        ) from None


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


def segment_label(segment_id: int | None) -> str:
    return "null (not in reference data)" if segment_id is None else str(segment_id)


def minute_lines(minute_ms: int, top: TopBySegment, k: int, min_impressions: int) -> list[str]:
    """The labeled text form of one minute: a header, then one line per (segment, rank)."""
    what = f"top {k} articles by CTR per segment, at least {min_impressions} impressions"
    if not top.segments:
        return [f"minute {iso(minute_ms)}: {what}: no article qualifies"]
    lines = [f"minute {iso(minute_ms)}: {what}: {len(top.segments)} segment(s)"]
    for seg in top.segments:
        for rank, a in enumerate(seg.articles, 1):
            lines.append(
                f"  segment {segment_label(seg.segment_id)}: #{rank} article {a.article_id}: "
                f"ctr {a.ctr:.4f} = {a.clicks} clicks / {a.impressions} impressions"
            )
    return lines


def handle_minute(minute_ms: int, top: TopBySegment, args: argparse.Namespace) -> None:
    """Hand one minute's per-segment ranking to the optimizer (here: print it)."""
    if args.json:
        line = {"minute": iso(minute_ms), "minute_ms": minute_ms, "min_impressions": args.min_impressions}
        print(json.dumps({**line, **top.to_dict()}), flush=True)
        return
    print("\n".join(minute_lines(minute_ms, top, args.k, args.min_impressions)), flush=True)


def poll_once(client: SyncQueryClient, args: argparse.Namespace, progress: list[int]) -> None:
    """Process every pending complete minute, checkpointing after each (appended to `progress`)."""
    checkpoint_path = Path(args.checkpoint)
    while True:
        checkpoint = load_checkpoint(checkpoint_path)
        minutes = pending_minutes(client, checkpoint, args.start)
        if checkpoint is not None:
            minutes = [m for m in minutes if m > checkpoint]  # belt and braces: never go backwards
        if not minutes:
            return
        window = client.completeness().window_ms
        for minute in minutes:
            top = client.top_by_segment(
                minutes=1,
                k=args.k,
                gender=parse_gender(args.gender),
                min_impressions=args.min_impressions,
                end_ms=minute + window,
            )
            handle_minute(minute, top, args)
            save_checkpoint(checkpoint_path, minute)  # only after the minute was handled
            progress.append(minute)
        # loop: more minutes may have completed meanwhile, or the batch was capped


def _bounded(low: int, high: int) -> object:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, got {value}")
        return value

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--es-url",
        default=os.environ.get("ELASTICSEARCH_URL", "http://localhost:9200"),
        help="search engine URL (default: $ELASTICSEARCH_URL, else http://localhost:9200)",
    )
    p.add_argument(
        "--index",
        default=os.environ.get("ES_INDEX", "clickstream-minutely"),
        help="the worker's ES_INDEX (default: $ES_INDEX, else clickstream-minutely)",
    )
    p.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        help=f"file holding the last processed minute, written atomically after each one (default: "
        f"./{DEFAULT_CHECKPOINT}, in the working directory; give an absolute path in production)",
    )
    p.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default 60)")
    p.add_argument("--once", action="store_true", help="poll once, process what is complete, exit")
    p.add_argument(
        "--start",
        default="latest",
        help="without a checkpoint: latest | earliest | an ISO 8601 time or epoch ms (default latest)",
    )
    p.add_argument("--k", type=_bounded(1, MAX_K), default=10, help="articles per segment (default 10)")
    p.add_argument("--gender", help="only this gender ('null': users not in the reference data)")
    p.add_argument(
        "--min-impressions",
        type=_bounded(0, MAX_MIN_IMPRESSIONS),
        default=DEFAULT_MIN_IMPRESSIONS,
        help=f"rank only articles with at least this many impressions in the minute, so a lucky click on "
        f"a few impressions cannot win (default {DEFAULT_MIN_IMPRESSIONS}; 0 or 1: every article)",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per processed minute")
    p.add_argument("--debug", action="store_true", help="debug logging, client libraries' lines included")
    return p.parse_args(argv)


def setup_logging(debug: bool) -> None:
    """Everything on stderr (stdout carries only the minutes); client libraries only from ERROR up."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        for name in CLIENT_LIBRARIES:
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.debug)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 0


def run(args: argparse.Namespace) -> int:
    checkpoint = Path(args.checkpoint).resolve()
    args.checkpoint = str(checkpoint)
    try:
        last = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        log.error("%s", exc)
        return 2
    if not args.once:  # --once says it all in its one closing line
        log.info(
            "checkpoint %s: %s",
            checkpoint,
            f"last processed {iso(last)}"
            if last is not None
            else f"none yet, starting at --start {args.start}",
        )
    # The worker's own settings (ELASTICSEARCH_API_KEY, _CA_CERTS, ELASTIC_CLOUD_ID, ... and *_FILE),
    # with this script's --es-url and --index on top: the one client factory, clickagg.clients.
    settings = config.load(elasticsearch_url=args.es_url, es_index=args.index)
    down_since: float | None = None
    with SyncQueryClient.from_settings(settings) as client:
        while True:
            done: list[int] = []
            try:
                poll_once(client, args, done)
            except (QueryError, CheckpointError) as exc:
                log.error("%s", exc)
                return 2
            except SEARCH_ENGINE_ERRORS as exc:
                reason = engine_failure(exc, settings)
                so_far = f"processed {len(done)} minute(s) first, " if done else "processed nothing, "
                if args.once:
                    log.error("%s; --once: %scheckpoint %s; exit 1", reason, so_far, _at(checkpoint))
                    return 1
                if down_since is None:  # one line when it goes down, not one per poll
                    log.warning("%s; %sretrying every %g s", reason, so_far, args.interval)
                    down_since = time.monotonic()
            else:
                if down_since is not None:
                    log.info("the search engine answers again after %.0f s", time.monotonic() - down_since)
                    down_since = None
                if done or args.once:
                    log.info("processed %d minute(s); checkpoint %s", len(done), _at(checkpoint))
            if args.once:
                return 0
            time.sleep(args.interval)


def _at(path: Path) -> str:
    last = load_checkpoint(path)
    return f"{path} at {iso(last)}" if last is not None else f"{path} not written yet"


if __name__ == "__main__":
    sys.exit(main())
