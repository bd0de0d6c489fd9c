"""When stage 2 makes its documents searchable: explicit refreshes instead of a fixed 1 s schedule.

Why: on the 5M-event benchmark Elasticsearch spent more CPU on once-a-second refreshes (a new
segment each, then merges) than on indexing: 36 CPU-s with `refresh_interval: 1s`, 24 CPU-s with
5 s, and the worker went from 125k to 163k events/s. But live dashboards want changes within a
second. So the index refreshes by itself only every 30 s (a safety net, see es/schema.py) and the
writer asks for a refresh when it matters:

- after writing live documents (a window still open, or closed less than a window ago): at most
  once per `live_interval_s`, so freshness stays about a second;
- after writing the final documents of a window that just closed: at once (once a window, cheap),
  so the batch optimizer sees a complete minute as soon as it is written;
- after writing only historical documents (a backlog being caught up): every `backlog_interval_s`;
- as soon as the writer has nothing more to read, so the end of a catch-up is visible at once.

Pure: the writer feeds it what it wrote and the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class RefreshPolicy:
    live_interval_s: float = 1.0
    backlog_interval_s: float = 10.0
    last: float = -math.inf
    pending: bool = False
    pending_live: bool = False
    pending_live_final: bool = False

    def wrote(self, live: bool, live_final: bool = False) -> None:
        self.pending = True
        self.pending_live = self.pending_live or live or live_final
        self.pending_live_final = self.pending_live_final or live_final

    def due(self, now: float, idle: bool) -> bool:
        if not self.pending:
            return False
        if idle or self.pending_live_final:
            return True
        interval = self.live_interval_s if self.pending_live else self.backlog_interval_s
        return now - self.last >= interval

    def refreshed(self, now: float) -> None:
        self.last = now
        self.pending = self.pending_live = self.pending_live_final = False
