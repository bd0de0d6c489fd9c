"""The `clickagg` command: stack, worker, produce, query."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from clickagg import config


def _stack(args: argparse.Namespace) -> int:
    from clickagg.stack import manager
    from clickagg.stack.layout import StackLayout

    layout = StackLayout.from_env(kafka_port=args.kafka_port, es_port=args.es_port)
    if args.action == "up":
        print("\n".join(manager.up(layout, args.service, secure=args.secure)))
        if args.service == "opensearch":
            print(f"OpenSearch:    http://127.0.0.1:{layout.opensearch_port}")
            return 0
        print(f"Kafka:         {layout.kafka_bootstrap}\nElasticsearch: {layout.es_url}")
        return 0
    if args.action == "down":
        print("\n".join(manager.down(layout, args.service, kill=args.kill)))
        return 0
    if args.action == "restart":
        manager.down(layout, args.service, kill=args.kill, opt_in=args.service is not None)
        print("\n".join(manager.up(layout, args.service, secure=args.secure)))
        return 0
    ok, lines = manager.status(layout)
    print("\n".join(lines))
    return 0 if ok else 3


def _worker(args: argparse.Namespace) -> int:
    from clickagg import preflight
    from clickagg.app.worker import run
    from clickagg.es.schema import check_before_start

    settings = config.load(args)
    preflight.check(settings)  # wrong password, CA, protocol, unreachable: one line, before Faust starts
    check_before_start(settings)  # another deployment's ES_INDEX: one line, before anything starts
    return run(settings)


def _produce(args: argparse.Namespace) -> int:
    from clickagg.produce import jsonl_records, send, synthetic_records

    settings = config.load(args)
    if args.file:
        records = jsonl_records(Path(args.file))
    else:
        records = synthetic_records(args.count, args.minutes, args.users, args.articles, args.seed)
    n = asyncio.run(send(settings, settings.events_topic, records))
    print(f"sent {n} events to {settings.events_topic}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from clickagg import query_cli

    return query_cli.run(config.load(args), args)


def _bench(args: argparse.Namespace) -> int:
    from clickagg.bench.runner import BenchOptions, bench

    settings = config.load(args)
    opts = BenchOptions(
        bootstrap=settings.kafka_bootstrap_servers,
        es_url=settings.elasticsearch_url,
        events=args.events,
        partitions=args.partitions,
        users=args.users,
        articles=args.articles,
        minutes=args.minutes,
        window_seconds=args.window,
        baseline_events=args.baseline_events,
        fresh_seconds=args.fresh_seconds,
        fresh_rate=args.fresh_rate,
        warmup_docs=args.warmup_docs,
    )
    result = asyncio.run(
        bench(opts, skip_baseline=args.no_baseline, skip_fresh=args.no_fresh, keep=args.keep)
    )
    keys = ["events_per_s", "ceiling_events_per_s", "baseline_events_per_s", "ratio_to_ceiling", "ratio_to_baseline",
            "exact", "freshness_p50_s", "freshness_p99_s", "final_delay_p50_s", "final_delay_p99_s", "peak_rss_mb", "cpu_percent"]  # fmt: skip
    if not args.json:
        for key in keys:
            print(f"{key:<24} {result[key]}")
    else:
        print(orjson.dumps(result).decode())
    return 0 if result["exact"] else 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickagg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="local real Kafka + Elasticsearch (no Docker)")
    stack.add_argument("action", choices=["up", "down", "status", "restart"])
    stack.add_argument(
        "service",
        nargs="?",
        choices=["kafka", "elasticsearch", "opensearch"],
        help="only this service (opensearch: opt-in)",
    )
    stack.add_argument("--kafka-port", type=int, default=None)
    stack.add_argument("--es-port", type=int, default=None)
    stack.add_argument("--kill", action="store_true", help="SIGKILL instead of a graceful stop")
    stack.add_argument(
        "--secure",
        action="store_true",
        help="up/restart: also Kafka SASL_SSL (SCRAM) and TLS + auth for Elasticsearch; settings in <stack dir>/secure.env",
    )
    stack.set_defaults(func=_stack)

    worker = sub.add_parser("worker", help="run the aggregation worker")
    config.add_arguments(worker)
    worker.set_defaults(func=_worker)

    produce = sub.add_parser("produce", help="send events from a JSONL file or a synthetic generator")
    config.add_arguments(produce)
    produce.add_argument("--file", help="JSONL file, one event per line")
    produce.add_argument("--count", type=int, default=10000, help="synthetic events to send")
    produce.add_argument(
        "--minutes", type=float, default=3.0, help="synthetic event times span the last N minutes"
    )
    produce.add_argument("--users", type=int, default=1000)
    produce.add_argument("--articles", type=int, default=50)
    produce.add_argument("--seed", type=int, default=11)
    produce.set_defaults(func=_produce)

    from clickagg import query_cli

    query = sub.add_parser("query", help="complete minutes, totals and top articles from Elasticsearch")
    config.add_arguments(query)
    query_cli.add_arguments(query)
    query.set_defaults(func=_query)

    bench = sub.add_parser("bench", help="benchmark clickagg, its ceiling and a naive Faust baseline")
    config.add_arguments(bench)
    bench.add_argument("--events", type=int, default=5_000_000)
    bench.add_argument("--partitions", type=int, default=4)
    bench.add_argument("--users", type=int, default=1_000_000)
    bench.add_argument("--articles", type=int, default=10_000)
    bench.add_argument("--minutes", type=int, default=10, help="event-time span of the loaded events")
    bench.add_argument("--window", type=int, default=60, help="window seconds")
    bench.add_argument("--baseline-events", type=int, default=1_000_000, help="cap for the (slow) baseline")
    bench.add_argument("--fresh-seconds", type=float, default=150.0, help="length of the live phase")
    bench.add_argument("--fresh-rate", type=float, default=8_333.0, help="events/s in the live phase")
    bench.add_argument(
        "--warmup-docs",
        type=int,
        default=None,
        help="documents indexed into a scratch index before timing, to warm Elasticsearch's JIT "
        "(default: as many as events, at most 1,500,000; 0: none, i.e. a cold Elasticsearch)",
    )
    bench.add_argument("--no-baseline", action="store_true")
    bench.add_argument("--no-fresh", action="store_true")
    bench.add_argument("--keep", action="store_true", help="keep the run's topics and indices for inspection")
    bench.add_argument("--json", action="store_true", help="one JSON object as the last line")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from clickagg.stack.layout import StackError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (StackError, config.ConfigError) as exc:
        print(f"clickagg: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
