"""Bulk sink: the request body and which item results are retried."""

from __future__ import annotations

import orjson

from clickagg.es.sink import BulkSink
from clickagg.tables.window_state import Write


def _unused(body: bytes, filter_path: str) -> object:
    raise AssertionError("these tests do not send")


def test_body_is_valid_ndjson_with_external_versions() -> None:
    sink = BulkSink(post=_unused, index='odd"name')
    writes = [Write("1-2-ab", 7, {"impression": 1}, 0, False), Write("3-4-cd", 9, {"click": 2}, 0, True)]
    lines = [orjson.loads(line) for line in sink._body(writes).splitlines()]
    assert lines == [
        {"index": {"_index": 'odd"name', "_id": "1-2-ab", "version": 7, "version_type": "external"}},
        {"impression": 1},
        {"index": {"_index": 'odd"name', "_id": "3-4-cd", "version": 9, "version_type": "external"}},
        {"click": 2},
    ]


def test_conflicts_are_success_and_throttling_is_retried() -> None:
    sink = BulkSink(post=_unused, index="i")
    writes = [Write(str(i), 1, {}, 0, False) for i in range(4)]
    resp = {
        "errors": True,
        "items": [{"index": {"status": s}} for s in (201, 409, 429, 503)],
    }
    assert [w.doc_id for w in sink._failed(writes, resp)] == ["2", "3"]
    assert sink._failed(writes, {"errors": False}) == []


async def test_errors_are_asked_for_in_detail_and_only_failed_documents_are_resent() -> None:
    calls: list[tuple[list[str], str]] = []
    answers = iter(
        [
            {"errors": True},  # fast path: something failed, not said what
            {"errors": True, "items": [{"index": {"status": 201}}, {"index": {"status": 429}}]},
            {"errors": False},  # the throttled one, resent alone
        ]
    )

    def post(body: bytes, filter_path: str) -> dict[str, object]:
        ids = [orjson.loads(line)["index"]["_id"] for line in body.splitlines()[::2]]
        calls.append((ids, filter_path))
        return next(answers)

    sink = BulkSink(post=post, index="i", max_backoff_s=0.01)
    await sink.write([Write("a", 1, {}, 0, True), Write("b", 1, {}, 0, True)])
    sink.close()
    assert calls == [
        (["a", "b"], "errors"),
        (["a", "b"], "errors,items.*.status,items.*.error"),
        (["b"], "errors"),
    ]
