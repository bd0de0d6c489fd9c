"""Daily indices and retention: which index a window's document lives in, and which days are gone.

Minute documents go to `<ES_INDEX>-YYYY.MM.DD`, the UTC day of the window's start, behind a read
alias named `<ES_INDEX>` (SPEC allows "index (or alias)"): dashboards, Kibana and the query API keep
the name while old days can be deleted whole, which costs Elasticsearch nothing compared with
deleting documents. A document's index follows from its window alone, so its id and its external
version stay in one index whatever happens (a replay of last week, a window closing after midnight).

Retention (RETENTION_DAYS = R, 0 keeps everything) has two edges, both decided here from the time:
- a window starting before `expire_before_ms(now)` (the start of the day R days before today) is
  *expired*: stage 1 dead-letters its events (reason `expired`) and stage 2 its rows, so nothing is
  ever written into a day that is, or is about to be, deleted;
- a daily index is deleted once its day is before `delete_before_day(now)`, one day later than it
  expired. That grace day covers a flush computed just before midnight and written just after: by
  the time a day's index is deleted, no worker has accepted anything for it for a whole day.
"""

from __future__ import annotations

from datetime import UTC, datetime

DAY_MS = 86_400_000
NEVER = -(2**63)  # expire_before_ms when nothing expires (RETENTION_DAYS=0)
_names: dict[tuple[str, int], str] = {}


def day_of(ms: int) -> int:
    """Days since 1970-01-01 (UTC) of a time in epoch milliseconds."""
    return ms // DAY_MS


def suffix(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y.%m.%d")


def daily_index(base: str, window_start_ms: int) -> str:
    """The index holding a window's documents (cached: one name per day and base)."""
    key = (base, window_start_ms // DAY_MS)
    name = _names.get(key)
    if name is None:
        if len(_names) > 10_000:
            _names.clear()
        name = _names[key] = f"{base}-{suffix(key[1])}"
    return name


def day_of_index(base: str, name: str) -> int | None:
    """The day a daily index of `base` holds, or None when `name` is not one (e.g. `<base>-progress`)."""
    prefix = base + "-"
    if not name.startswith(prefix):
        return None
    text = name[len(prefix) :]
    if len(text) != 10 or text[4] != "." or text[7] != ".":
        return None
    try:
        moment = datetime.strptime(text, "%Y.%m.%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp()) // 86_400


def index_patterns(base: str) -> list[str]:
    """Template patterns matching `<base>-YYYY.MM.DD` for years 1000-9999 but not `<base>-progress`."""
    return [f"{base}-{digit}*" for digit in "123456789"]


def expire_before_ms(now_ms: int, retention_days: int) -> int:
    """Windows starting before this are expired (see the module doc); NEVER when retention is off."""
    if retention_days <= 0:
        return NEVER
    return (day_of(now_ms) - retention_days) * DAY_MS


def expire_before_all_ms(now_ms: int, retentions: tuple[int, ...]) -> int:
    """The strictest edge of several retentions (minutes and hours): expired if any day is gone."""
    return max(expire_before_ms(now_ms, r) for r in retentions)


def delete_before_day(now_ms: int, retention_days: int) -> int | None:
    """Daily indices of days before this may be deleted (one grace day after expiry); None: keep all."""
    if retention_days <= 0:
        return None
    return day_of(now_ms) - retention_days - 1


def to_delete(base: str, names: list[str], now_ms: int, retention_days: int) -> list[str]:
    """The daily indices of `base` among `names` that retention deletes now, oldest first."""
    before = delete_before_day(now_ms, retention_days)
    if before is None:
        return []
    days = {name: day_of_index(base, name) for name in names}
    return sorted((n for n, d in days.items() if d is not None and d < before), key=lambda n: days[n] or 0)
