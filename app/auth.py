"""WEB_AUTH_TOKEN: `/api/*` and `/dashboard` answer only `Authorization: Bearer <token>` when it is set.

Probes (`/healthz`, `/readyz`) and `/metrics` stay open: an orchestrator and a scraper must reach
them without the token. The comparison is constant-time; the token is never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from clickagg.config import Settings

View = Callable[[Any, Any], Awaitable[Any]]


def authorized(token: str, header: str | None) -> bool:
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode(), expected)


def guarded(settings: Settings) -> Callable[[View], View]:
    def wrap(view: View) -> View:
        @wraps(view)
        async def checked(web: Any, request: Any) -> Any:
            if not authorized(settings.web_auth_token, request.headers.get("Authorization")):
                return web.json(
                    {"error": "unauthorized: send Authorization: Bearer <WEB_AUTH_TOKEN>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="clickagg"'},
                )
            return await view(web, request)

        return checked

    return wrap
