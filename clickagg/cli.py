"""The `clickagg` command: stack, worker, produce, query, bench, config.

Errors a person can fix (bad settings, a service that cannot be reached, a bad input file) are one
line on stderr and exit 1; `--debug` (or LOG_LEVEL=DEBUG) adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import orjson

from clickagg import config, logs
from clickagg.settings_doc import FOR_COMMAND

STACK_EPILOG = """\
environment:
  CLICKAGG_STACK_DIR          data, logs and pid files (default ~/.local/state/clickagg/stack)
  CLICKAGG_CACHE_DIR          downloads (default ~/.cache/clickagg)
  CLICKAGG_KAFKA_PORT         Kafka (9092; --kafka-port wins)
  CLICKAGG_ES_PORT            Elasticsearch (9200; --es-port wins)
  CLICKAGG_OPENSEARCH_PORT    OpenSearch, only with `up opensearch` (9201)
  CLICKAGG_KAFKA_SECURE_PORT  Kafka SASL_SSL listener, only with --secure (9094)
  CLICKAGG_ES_SECURE_PORT     TLS + auth in front of Elasticsearch, only with --secure (9243)
  CLICKAGG_STACK_TIMEOUT      seconds `up` waits for each service to be healthy (180)
The ports must be those of the stack in CLICKAGG_STACK_DIR: another port needs another stack dir."""


def _settings(args: argparse.Namespace, quiet: bool = False, **overrides: object) -> config.Settings:
    """Settings of a command, and its logging set up from them (stderr, LOG_LEVEL, LOG_FORMAT).

    quiet: a command whose answer is its output (produce, query) logs warnings and errors only,
    unless LOG_LEVEL=DEBUG; its INFO lines would only stand between a person and the answer.
    """
    if getattr(args, "debug", False):
        overrides["log_level"] = "DEBUG"
    settings = config.load(args, **overrides)
    level = settings.log_level
    if quiet and level.upper() == "INFO":
        level = "WARNING"
    logs.setup(level, settings.log_format)
    return settings


def _stack(args: argparse.Namespace) -> int:
    from clickagg.stack import agree, manager
    from clickagg.stack.layout import StackLayout

    layout = StackLayout.from_env(kafka_port=args.kafka_port, es_port=args.es_port)
    agree.check(layout)  # the ports asked for are those of the stack in CLICKAGG_STACK_DIR
    if args.action == "up":
        print("\n".join(manager.up(layout, args.service, secure=args.secure)))  # a line per URL
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

    settings = _settings(args)
    preflight.check(settings)  # web port, wrong password, CA, protocol, unreachable: one line, before Faust
    check_before_start(settings)  # another deployment's ES_INDEX: one line, before anything starts
    return run(settings)


def _produce(args: argparse.Namespace) -> int:
    from clickagg.produce import check_jsonl, jsonl_records, send, synthetic_records

    settings = _settings(args, quiet=True)
    if args.file:
        path = Path(args.file)
        check_jsonl(path, settings.event_time_field, send_invalid=args.send_invalid)
        records = jsonl_records(path)
    else:
        live = args.rate > 0
        records = synthetic_records(args.count, args.minutes, args.users, args.articles, args.seed, live)
    n = asyncio.run(send(settings, settings.events_topic, records, rate=args.rate))
    print(f"sent {n} events to {settings.events_topic}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from clickagg import query_cli

    return query_cli.run(_settings(args, quiet=True), args)


def _config(args: argparse.Namespace) -> int:
    overrides = {"log_level": "DEBUG"} if getattr(args, "debug", False) else {}
    settings, sources = config.explain(args, **overrides)
    print("\n".join(config.show(settings, sources)))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from clickagg.bench.runner import BenchOptions, bench

    settings = _settings(args)
    es_url = settings.elasticsearch_url
    if args.engine == "opensearch" and args.elasticsearch_url is None:  # the local stack's node
        from clickagg.stack import opensearch
        from clickagg.stack.layout import StackLayout

        es_url = opensearch.url(StackLayout.from_env())
    opts = BenchOptions(
        bootstrap=settings.kafka_bootstrap_servers,
        es_url=es_url,
        engine=args.engine,
        events=args.events,
        partitions=args.partitions,
        users=args.users,
        articles=args.articles,
        minutes=args.minutes,
        window_seconds=settings.window_seconds,
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


def _at_least(minimum: float, kind: type = int) -> Callable[[str], float]:
    """An argparse type: a number >= minimum, else a one-line usage error naming the bound."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole ' if kind is int else ''}number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {text}")
        return value

    return parse


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clickagg")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _common(with_settings: bool) -> argparse.ArgumentParser:
    """Flags every command has: --debug; and --config for those that read Settings."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks and every log line"
    )
    if with_settings:
        common.add_argument(
            "--config",
            metavar="FILE",
            help="TOML file of settings (keys: lower-case setting names); env CLICKAGG_CONFIG; "
            "flags > env > file > defaults",
        )
    return common


def _sub(sub: argparse._SubParsersAction, name: str, help: str, **kw: object) -> argparse.ArgumentParser:
    with_settings = name in FOR_COMMAND
    parser = sub.add_parser(name, help=help, description=help, parents=[_common(with_settings)], **kw)  # type: ignore[arg-type]
    if with_settings:
        group = parser.add_argument_group("settings (each also an environment variable or a config-file key)")
        config.add_arguments(group, FOR_COMMAND[name])
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickagg", description=__doc__, parents=[_common(False)])
    parser.add_argument("--version", action="version", version=f"clickagg {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = _sub(
        sub,
        "stack",
        "local real Kafka + Elasticsearch (no Docker)",
        epilog=STACK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stack.add_argument("action", choices=["up", "down", "status", "restart"], help="what to do")
    stack.add_argument(
        "service",
        nargs="?",
        choices=["kafka", "elasticsearch", "opensearch"],
        help="only this service (opensearch: opt-in)",
    )
    stack.add_argument(
        "--kafka-port", type=int, default=None, help="Kafka's port (CLICKAGG_KAFKA_PORT, 9092)"
    )
    stack.add_argument(
        "--es-port", type=int, default=None, help="Elasticsearch's port (CLICKAGG_ES_PORT, 9200)"
    )
    stack.add_argument("--kill", action="store_true", help="SIGKILL instead of a graceful stop")
    stack.add_argument(
        "--secure",
        action="store_true",
        help="up/restart: also Kafka SASL_SSL (SCRAM) and TLS + auth for Elasticsearch; settings in <stack dir>/secure.env",
    )
    stack.set_defaults(func=_stack)

    worker = _sub(sub, "worker", "run the aggregation worker")
    worker.set_defaults(func=_worker)

    produce = _sub(sub, "produce", "send events from a JSONL file or a synthetic generator")
    produce.add_argument(
        "--file", help="JSONL file, one event per line (checked first: invalid lines refuse the file)"
    )
    produce.add_argument(
        "--send-invalid",
        action="store_true",
        help="--file: send invalid lines too (they become dead letters)",
    )
    produce.add_argument("--count", type=_at_least(0), default=10000, help="synthetic events to send (10000)")
    produce.add_argument(
        "--minutes",
        type=_at_least(0, float),
        default=3.0,
        help="synthetic event times span the last N minutes (3; ignored with --rate)",
    )
    produce.add_argument("--users", type=_at_least(1), default=1000, help="synthetic users 1..N (1000)")
    produce.add_argument("--articles", type=_at_least(1), default=50, help="synthetic articles 1..N (50)")
    produce.add_argument("--seed", type=int, default=11, help="random seed of the synthetic events (11)")
    produce.add_argument(
        "--rate",
        type=_at_least(0, float),
        default=0.0,
        help="at most N events/s, stamped when sent (a live demo); 0: as fast as possible",
    )
    produce.set_defaults(func=_produce)

    from clickagg import query_cli

    query = _sub(sub, "query", "complete minutes, totals and top articles from Elasticsearch")
    query_cli.add_arguments(query)
    query.set_defaults(func=_query)

    cfg = _sub(sub, "config", "the effective settings and where each came from (flag, env, file, default)")
    cfg.add_argument("action", choices=["show"], help="show: every setting, secrets redacted")
    cfg.set_defaults(func=_config)

    bench = _sub(sub, "bench", "benchmark clickagg, its ceiling and a naive Faust baseline")
    bench.add_argument("--events", type=int, default=5_000_000, help="events loaded (5,000,000)")
    bench.add_argument("--partitions", type=int, default=4, help="partitions of the events topic (4)")
    bench.add_argument("--users", type=int, default=1_000_000, help="reference users (1,000,000)")
    bench.add_argument("--articles", type=int, default=10_000, help="distinct articles (10,000)")
    bench.add_argument("--minutes", type=int, default=10, help="event-time span of the loaded events (10)")
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
    bench.add_argument(
        "--engine",
        choices=["elasticsearch", "opensearch"],
        default="elasticsearch",
        help="the search engine written to (elasticsearch); opensearch: the local stack's OpenSearch node "
        "(`clickagg stack up opensearch`, CLICKAGG_OPENSEARCH_PORT) unless --elasticsearch-url names one",
    )
    bench.add_argument("--no-baseline", action="store_true", help="skip the naive Faust baseline")
    bench.add_argument("--no-fresh", action="store_true", help="skip the live (freshness) phase")
    bench.add_argument("--keep", action="store_true", help="keep the run's topics and indices for inspection")
    bench.add_argument("--json", action="store_true", help="one JSON object as the last line")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from clickagg.reference_data.errors import ReferenceDataError
    from clickagg.stack.layout import StackError

    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args.func(args))
    except (StackError, config.ConfigError, ReferenceDataError) as exc:
        if debug or logs.debugging():
            traceback.print_exc()
        print(f"clickagg: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
