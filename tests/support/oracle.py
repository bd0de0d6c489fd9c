"""The independent oracle: SQLite running SPEC's reference SQL over the records the test sent.

The test decides which records are valid from how it generated them, never by calling clickagg's
parser, so a parser bug cannot hide in both sides.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

REFERENCE_SQL = """
SELECT (S.rowtime - S.rowtime % :window_ms) AS time, R.gender, R.segment_id, S.article_id,
       SUM(CASE S.action WHEN 'impression' THEN 1 ELSE 0 END) AS impression,
       SUM(CASE S.action WHEN 'click' THEN 1 ELSE 0 END) AS click
FROM source_stream S LEFT JOIN reference_data R ON S.user_id = R.user_id
GROUP BY 1, R.gender, R.segment_id, S.article_id
"""

Row = tuple[int, str | None, int | None, int, int, int]


def expected_rows(
    events: Iterable[tuple[int, int, int, str]],
    users: Iterable[tuple[int, str | None, int | None]],
    window_ms: int = 60_000,
) -> set[Row]:
    """events: (rowtime_ms, article_id, user_id, action); users: (user_id, gender, segment_id)."""
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE source_stream (rowtime INTEGER, article_id INTEGER, user_id INTEGER, action TEXT)"
    )
    db.execute("CREATE TABLE reference_data (user_id INTEGER PRIMARY KEY, gender TEXT, segment_id INTEGER)")
    db.executemany("INSERT INTO source_stream VALUES (?, ?, ?, ?)", events)
    db.executemany("INSERT OR REPLACE INTO reference_data VALUES (?, ?, ?)", users)
    rows = {tuple(r) for r in db.execute(REFERENCE_SQL, {"window_ms": window_ms})}
    db.close()
    return rows  # type: ignore[return-value]
