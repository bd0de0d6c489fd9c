"""`clickagg query latest|range|top|completeness`: the read API from a shell, as tables or JSON.

Kept apart from cli.py so the command line only parses; everything here imports Elasticsearch
lazily, which keeps `clickagg --help` and the other subcommands fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from clickagg.config import Settings

ACTIONS = ("latest", "range", "top", "completeness")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        choices=ACTIONS,
        default="latest",
        help="latest: newest complete minutes; range: minutes in [--from, --to); "
        "top: articles by CTR; completeness: progress per partition",
    )
    parser.add_argument("--minutes", type=int, default=5, help="latest / top: how many complete minutes (5)")
    parser.add_argument(
        "--from", dest="from_time", help="range: start, ISO 8601 (UTC if no offset) or epoch ms"
    )
    parser.add_argument("--to", dest="to_time", help="range: end (exclusive), ISO 8601 or epoch ms")
    parser.add_argument("--k", type=int, default=10, help="top: how many articles (10)")
    parser.add_argument("--gender", help="top: only this gender ('null': users not in the reference data)")
    parser.add_argument(
        "--segment", help="top: only this segment id ('null': users not in the reference data)"
    )
    parser.add_argument(
        "--min-impressions",
        type=int,
        default=None,
        help="top: rank only articles with at least this many impressions in the range, so a lucky "
        "click on a few impressions cannot win (default 20: clickagg.query.DEFAULT_MIN_IMPRESSIONS; "
        "0 ranks every article with an impression)",
    )
    parser.add_argument("--by-segment", action="store_true", help="top: the top k within each segment")
    parser.add_argument(
        "--resolution",
        choices=("minute", "hour", "auto"),
        default=None,
        help="range / top / completeness: minute documents (default), the exact hourly rollups "
        "(HOURLY_INDEX; top: --minutes a multiple of 60, the last complete hours), or auto (range: "
        "hours when longer than 6 h and on hour boundaries; top: the same minutes, their whole hours "
        "read from the rollups)",
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 for a bad request, 1 when the index is missing or the engine cannot answer."""
    from clickagg.es.errors import IndexMissing, SearchEngineError, Unreachable
    from clickagg.query import QueryError, describe_error

    try:
        text = asyncio.run(_answer(settings, args))
    except QueryError as exc:
        print(f"clickagg query: error: {exc}", file=sys.stderr)
        return 2
    except IndexMissing:
        if getattr(args, "resolution", None) == "hour":
            print(
                f"clickagg query: error: HOURLY_INDEX {settings.hourly} does not exist at "
                f"{settings.elasticsearch_url} (workers write it when HOURLY_INDEX is set; "
                "or ask --resolution minute)",
                file=sys.stderr,
            )
            return 1
        print(
            f"clickagg query: error: ES_INDEX {settings.es_index} does not exist at {settings.elasticsearch_url} "
            "(check ES_INDEX; a worker creates it when it starts)",
            file=sys.stderr,
        )
        return 1
    except Unreachable as exc:
        print(
            f"clickagg query: error: the search engine at {settings.elasticsearch_url} does not answer "
            f"({exc.reason}): check ELASTICSEARCH_URL and that it runs",
            file=sys.stderr,
        )
        return 1
    except SearchEngineError as exc:
        print(
            f"clickagg query: error: the search engine at {settings.elasticsearch_url} failed: {describe_error(exc)}",
            file=sys.stderr,
        )
        return 1
    print(text)
    return 0


async def _answer(settings: Settings, args: argparse.Namespace) -> str:
    from clickagg.query import QueryClient, QueryError, parse_gender, parse_segment, parse_time

    _check_flags(args)
    # Every mistake in the request is reported before the engine is asked anything.
    if args.what == "range":
        if not args.from_time or not args.to_time:
            raise QueryError("range needs --from and --to")
        parse_time(args.from_time), parse_time(args.to_time)
    if args.what == "top":
        parse_gender(args.gender), parse_segment(args.segment)
    resolution = args.resolution or "minute"
    async with QueryClient.from_settings(settings) as client:
        if args.what != "latest":
            client.alias("minute" if resolution == "auto" else resolution)  # hours when they are off: 2
        await client.require_index(resolution)  # a missing index would read as an empty one
        if args.what == "latest":
            rows = await client.latest_complete_minutes(args.minutes)
            return _json([r.to_dict() for r in rows]) if args.json else minutes_table(rows)
        if args.what == "range":
            if not args.from_time or not args.to_time:
                raise QueryError("range needs --from and --to")
            rows = await client.minutes(parse_time(args.from_time), parse_time(args.to_time), resolution)
            return _json([r.to_dict() for r in rows]) if args.json else minutes_table(rows)
        if args.what == "top":
            return await _top(client, args)
        comp = await client.completeness(resolution)
        return _json(comp.to_dict()) if args.json else completeness_text(comp)


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that the chosen action would silently ignore."""
    from clickagg.query import MAX_MIN_IMPRESSIONS, MAX_WINDOWS, QueryError

    top_only = {
        "--k": args.k != 10,
        "--gender": args.gender is not None,
        "--segment": args.segment is not None,
        "--min-impressions": args.min_impressions is not None,
        "--by-segment": args.by_segment,
    }
    used: list[str] = []
    if args.what != "top":
        used += [flag for flag, given in top_only.items() if given]
    if args.what != "range":
        used += [flag for flag, given in (("--from", args.from_time), ("--to", args.to_time)) if given]
    if args.what in ("range", "completeness") and args.minutes != 5:
        used.append("--minutes")
    if args.what == "latest" and args.resolution is not None:
        used.append("--resolution")
    if args.by_segment and args.segment is not None:
        used.append("--segment (with --by-segment)")
    if args.what == "completeness" and args.resolution == "auto":
        raise QueryError("--resolution for 'query completeness' is minute or hour, got auto")
    most = MAX_WINDOWS * 60 if args.what == "top" and args.resolution in ("hour", "auto") else MAX_WINDOWS
    if not 1 <= args.minutes <= most:
        raise QueryError(f"--minutes must be in 1..{most}, got {args.minutes}")
    if args.what == "top" and args.resolution == "hour" and args.minutes % 60:
        raise QueryError(f"with --resolution hour, --minutes must be a multiple of 60, got {args.minutes}")
    if args.min_impressions is not None and not 0 <= args.min_impressions <= MAX_MIN_IMPRESSIONS:
        raise QueryError(f"--min-impressions must be in 0..{MAX_MIN_IMPRESSIONS}, got {args.min_impressions}")
    if used:
        raise QueryError(f"{', '.join(used)} do(es) not apply to 'query {args.what}'")


async def _top(client: Any, args: argparse.Namespace) -> str:
    from clickagg.query import DEFAULT_MIN_IMPRESSIONS, parse_gender, parse_segment

    if args.min_impressions is None:  # None, not the value, tells "not given" for _check_flags
        args.min_impressions = DEFAULT_MIN_IMPRESSIONS
    gender = parse_gender(args.gender)
    if args.by_segment:
        result = await client.top_by_segment(
            args.minutes, args.k, gender, args.min_impressions, resolution=args.resolution or "minute"
        )
        if args.json:
            return _json(result.to_dict())
        blocks = [_top_header(result, args, "per segment")]
        for seg in result.segments:
            label = "null (not in reference data)" if seg.segment_id is None else str(seg.segment_id)
            blocks.append(f"\nsegment {label}\n" + articles_table(seg.articles))
        if not result.segments:
            blocks.append("no articles")
        return "\n".join(blocks)
    segment = parse_segment(args.segment)
    top = await client.top_articles(
        args.minutes, args.k, gender, segment, args.min_impressions, resolution=args.resolution or "minute"
    )
    if args.json:
        return _json(top.to_dict())
    return (
        _top_header(top, args, "") + "\n" + (articles_table(top.articles) if top.articles else "no articles")
    )


def _top_header(result: Any, args: argparse.Namespace, suffix: str) -> str:
    if result.from_ms is None:
        return "no complete minutes yet (see `clickagg query completeness`)"
    filters = f"gender={args.gender or 'any'}, segment={args.segment or 'any'}, min impressions={args.min_impressions}"
    what = f"top {args.k} articles by CTR{' ' + suffix if suffix else ''}"
    span = (
        f"{args.minutes // 60} complete hour(s)"
        if args.resolution == "hour"
        else f"{args.minutes} complete minute(s)"
        + (" (whole hours from the hourly rollups)" if args.resolution == "auto" else "")
    )
    return f"{what}, {span} [{_iso(result.from_ms)}, {_iso(result.to_ms)}), {filters}"


def _iso(ms: int) -> str:
    from clickagg.core.documents import iso

    return iso(ms)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def minutes_table(rows: list[Any]) -> str:
    if not rows:
        return "no complete minutes yet (see `clickagg query completeness`)"
    unit = "hour" if rows[0].resolution == "hour" else "minute"
    lines = [f"{unit + ' (UTC)':<26}{'impressions':>12}{'clicks':>10}{'ctr':>9}{'docs':>8}  final  complete"]
    for r in rows:
        ctr = "-" if r.ctr is None else f"{r.ctr:.4f}"
        lines.append(
            f"{r.time:<26}{r.impressions:>12}{r.clicks:>10}{ctr:>9}{r.documents:>8}  "
            f"{_yes(r.final):<5}  {_yes(r.complete)}"
        )
    return "\n".join(lines)


def articles_table(articles: Any) -> str:
    lines = [f"{'rank':>4}  {'article_id':>20}{'impressions':>12}{'clicks':>10}{'ctr':>9}"]
    for rank, a in enumerate(articles, 1):
        lines.append(f"{rank:>4}  {a.article_id:>20}{a.impressions:>12}{a.clicks:>10}{a.ctr:>9.4f}")
    return "\n".join(lines)


def completeness_text(comp: Any) -> str:
    if comp.complete_before_ms is None:
        head = "nothing is complete yet"
    else:
        unit = "hour" if comp.resolution == "hour" else "minute"
        head = (
            f"complete before {_iso(comp.complete_before_ms)} "
            f"(last complete {unit} {_iso(comp.last_complete_minute_ms)})"
        )
    missing = ", ".join(map(str, comp.missing_partitions)) or "none"
    lines = [
        head,
        f"{'hours (complete when every minute in them is), ' if comp.resolution == 'hour' else ''}"
        f"window {comp.window_ms} ms, lateness {comp.lateness_ms} ms, "
        f"partitions {comp.partitions_expected} (missing: {missing})",
    ]
    if comp.partitions:
        lines.append(f"{'partition':>9}  {'closed below (UTC)':<26}updated at")
        for p in comp.partitions:
            lines.append(f"{p.partition:>9}  {_iso(p.closed_below_ms):<26}{p.updated_at or '-'}")
    return "\n".join(lines)
