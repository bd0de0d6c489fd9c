"""The baseline: a naive Faust agent counting into a tumbling-window table, the tutorial way.

It is what one writes first with Faust: one agent, per event `orjson`-parse, join the user from a
dict and `table[key] += 1` on `app.Table(...).tumbling(...).relative_to_stream()`, every increment
going through the table's changelog topic; at the end every window is written to the search engine
(Elasticsearch or OpenSearch, `--engine`), in bulk requests of 500 documents as the client libraries'
bulk helpers send them.
The benchmark runs it in a subprocess (Faust owns the process and its event loop) to show what
clickagg's batched pipeline gains over it. It is honest, not sabotaged and not tuned: Faust's
defaults everywhere, only the validation rules are clickagg's (so its counts are the SPEC's).

    python -m clickagg.bench.baseline --bootstrap 127.0.0.1:9092 --topic T --users-csv users.csv \\
        --es-url http://127.0.0.1:9200 --index IDX --app-id ID --max-events N --web-port 6099 \\
        [--engine elasticsearch|opensearch]

It stops after --max-events records (valid or not) or when the topic has been quiet for
--idle-seconds, writes the windows, and prints exactly one JSON line on stdout (Faust's banner and
logs, at the tutorial's `-l info`, go to stderr): `events` valid events counted, `invalid` records
skipped, `seconds` from the first record to the last, `events_per_s` = (events + invalid) / seconds,
`docs` written, `write_seconds` for the bulk write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient

from clickagg import gc_tuning
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.core.events import CLICK, IMPRESSION, parse_event
from clickagg.core.keys import GroupKey, doc_id
from clickagg.es import engines, schema
from clickagg.kafka_util import partition_counts

Users = dict[int, tuple[str | None, int | None]]
UNKNOWN: tuple[str | None, int | None] = (None, None)
ACTION_NAMES = {IMPRESSION: "impression", CLICK: "click"}
# SPEC's document fields and types, so the baseline's index reads like clickagg's.
MAPPINGS: dict[str, Any] = schema.MAPPINGS
INDEX_SETTINGS: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
CHUNK = 500  # documents per bulk request: the default of elasticsearch-py's and opensearch-py's bulk helpers


def load_users(path: str) -> Users:
    """`user_id,gender,segment_id` rows into a plain dict (a first line that is not data is a header)."""
    users: Users = {}
    with open(path) as fh:
        for n, line in enumerate(fh):
            line = line.strip()
            if not line:
                continue
            uid, gender, segment = line.split(",")
            if n == 0 and not uid.strip().isdigit():
                continue
            users[int(uid)] = (gender, int(segment))
    return users


@dataclass
class Progress:
    """What the agent has done so far, read by the finishing task."""

    max_events: int
    idle_seconds: float
    seen: int = 0  # records taken from the stream (valid + invalid)
    counted: int = 0  # valid events (each increments the table once, or not at all for other actions)
    invalid: int = 0
    first: float = 0.0  # perf_counter of the first record
    last: float = 0.0  # perf_counter of the last record
    capped: asyncio.Event = field(default_factory=asyncio.Event)  # max_events reached
    result: dict[str, Any] = field(default_factory=dict)
    worker: faust.Worker | None = None  # set once built; the finishing task stops it
    stopper: asyncio.Future[Any] | None = None

    def idle(self, now: float) -> bool:
        """The topic looks exhausted: no event for idle_seconds after at least one."""
        return self.seen > 0 and now - self.last >= self.idle_seconds


def window_counts(items: Any, window_ms: int) -> dict[GroupKey, list[int]]:
    """Fold the table's (json key, window range) → count items into [impressions, clicks] per group."""
    groups: dict[GroupKey, list[int]] = {}
    for (key, window_range), value in items:
        gender, segment, article, action = orjson.loads(key)
        start_ms = int(round(window_range[0] * 1000))
        group = (start_ms, gender, segment, article)
        counts = groups.get(group)
        if counts is None:
            counts = groups[group] = [0, 0]
        counts[0 if action == "impression" else 1] += int(value)
    return groups


def documents(index: str, groups: dict[GroupKey, list[int]]) -> list[dict[str, Any]]:
    """Bulk actions: SPEC documents with clickagg's deterministic ids, so a rerun overwrites."""
    actions = []
    for group, (impressions, clicks) in groups.items():
        start_ms, gender, segment, article = group
        actions.append(
            {
                "_index": index,
                "_id": doc_id(group),
                "_source": {
                    "time": iso(start_ms),
                    "gender": gender,
                    "segment_id": segment,
                    "article_id": article,
                    "impression": impressions,
                    "click": clicks,
                    "final": True,
                },
            }
        )
    return actions


async def write_documents(es_url: str, index: str, actions: list[dict[str, Any]], engine: str) -> int:
    """Create the index if needed, bulk requests of CHUNK documents, then a refresh; documents written.

    Through the port (clickagg.es.port), so one code path writes to Elasticsearch or OpenSearch; the
    requests are what the client libraries' `async_bulk` helper sends with its defaults.
    """
    es = engines.search_engine(Settings(elasticsearch_url=es_url, search_engine=engine), timeout_s=60)
    try:
        if not await es.exists(index):
            await es.create_index(index, {"settings": INDEX_SETTINGS, "mappings": MAPPINGS})
        written = 0
        for i in range(0, len(actions), CHUNK):
            lines = []
            for action in actions[i : i + CHUNK]:
                lines.append(orjson.dumps({"index": {"_index": action["_index"], "_id": action["_id"]}}))
                lines.append(orjson.dumps(action["_source"]))
            resp = await es.bulk(b"\n".join(lines) + b"\n", filter_path="items.*.status")
            written += sum(1 for item in resp.get("items", []) for r in item.values() if r["status"] < 300)
        await es.refresh(index)
        return written
    finally:
        await es.close()


async def topic_partitions(bootstrap: str, topic: str) -> int:
    """The source topic's partition count: Faust's table changelog must be co-partitioned with it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        counts = await partition_counts(admin, [topic])
    finally:
        await admin.close()
    if topic not in counts:
        raise SystemExit(f"topic {topic!r} does not exist on {bootstrap}")
    return counts[topic]


def build_app(args: argparse.Namespace, partitions: int, users: Users, progress: Progress) -> faust.App:
    """The Faust app exactly as the tutorial shapes it: app, topic, windowed table, agent, task."""
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_port=args.web_port,
        web_bind="127.0.0.1",
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        datadir=args.data_dir,
    )
    events_topic = app.topic(args.topic, value_serializer="raw")
    table = app.Table("counts", default=int, partitions=partitions)
    counts = table.tumbling(args.window_seconds, expires=args.expires_seconds).relative_to_stream()
    window_ms = int(args.window_seconds * 1000)

    @app.agent(events_topic)
    async def count(stream: faust.StreamT[bytes]) -> None:
        clock = time.perf_counter
        async for raw in stream:
            if progress.capped.is_set():
                break  # take no more events; the finishing task writes and stops the worker
            progress.last = clock()
            if progress.seen == 0:
                progress.first = progress.last
            progress.seen += 1
            if progress.seen >= progress.max_events:
                progress.capped.set()
            event = parse_event(raw)
            if isinstance(event, str):
                progress.invalid += 1
                continue
            article, user, action, _ = event
            progress.counted += 1
            name = ACTION_NAMES.get(action)
            if name is None:
                continue  # SPEC: other actions count in neither column
            gender, segment = users.get(user, UNKNOWN)
            counts[orjson.dumps([gender, segment, article, name]).decode()] += 1

    @app.task
    async def finish() -> None:
        while not progress.idle(time.perf_counter()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.capped.wait(), timeout=0.2)
                break
        seconds = progress.last - progress.first
        groups = window_counts(list(table.items()), window_ms)
        actions = documents(args.index, groups)
        started = time.perf_counter()
        docs = await write_documents(args.es_url, args.index, actions, args.engine)
        records = progress.counted + progress.invalid
        progress.result = {
            "events": progress.counted,
            "invalid": progress.invalid,
            "seconds": round(seconds, 3),
            "events_per_s": round(records / seconds, 1) if seconds > 0 else 0.0,
            "docs": docs,
            "write_seconds": round(time.perf_counter() - started, 3),
        }
        # Stop from a task of its own: stopping the worker cancels this task.
        assert progress.worker is not None
        progress.stopper = asyncio.ensure_future(progress.worker.stop())

    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clickagg.bench.baseline", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--users-csv", required=True)
    p.add_argument("--es-url", required=True)
    p.add_argument(
        "--engine",
        choices=["elasticsearch", "opensearch", "auto"],
        default="elasticsearch",
        help="the search engine at --es-url (SEARCH_ENGINE's values; default elasticsearch)",
    )
    p.add_argument("--index", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--max-events", type=int, required=True)
    p.add_argument("--window-seconds", type=float, default=60.0)
    p.add_argument("--web-port", type=int, default=6066)
    p.add_argument(
        "--data-dir",
        default=None,
        help="Faust's data directory (default: a new temporary one, not `<app-id>-data` in the current directory)",
    )
    p.add_argument(
        "--expires-seconds",
        type=float,
        default=86400.0,
        help="Faust expires windows by wall clock: keep this longer than the data's age",
    )
    p.add_argument("--idle-seconds", type=float, default=5.0, help="stop when no event came for this long")
    p.add_argument("--loglevel", default="info", help="as in the Faust tutorial (`worker -l info`)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.data_dir is None:
        args.data_dir = tempfile.mkdtemp(prefix=f"{args.app_id}-")
    gc_tuning.tune()  # the same thresholds as the worker and the ceiling
    out = sys.stdout
    users = load_users(args.users_csv)
    progress = Progress(max_events=args.max_events, idle_seconds=args.idle_seconds)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    partitions = loop.run_until_complete(topic_partitions(args.bootstrap, args.topic))
    app = build_app(args, partitions, users, progress)
    # Faust prints its banner and (by default) logs to stdout; stdout is reserved for the result.
    with contextlib.redirect_stdout(sys.stderr):
        worker = faust.Worker(
            app,
            loop=loop,
            loglevel=args.loglevel,
            logfile=sys.stderr,
            stdout=sys.stderr,
            quiet=True,
            redirect_stdouts=False,
        )
        progress.worker = worker
        code = 0
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    if not progress.result:
        print("baseline: Faust stopped before the result was written", file=sys.stderr)
        return code or 1
    out.write(orjson.dumps(progress.result).decode() + "\n")
    out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
