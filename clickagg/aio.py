"""Asyncio helpers shared by the stages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


async def quietly(step: Awaitable[Any], timeout_s: float = 10.0) -> None:
    """Cleanup that must neither hang nor mask the original error (the broker may be gone)."""
    try:
        await asyncio.wait_for(step, timeout_s)
    except Exception as exc:
        log.warning("cleanup step failed: %r", exc)
