"""Typed keys of what the aiohttp application holds."""

from __future__ import annotations

import weakref

from aiohttp import web

from ..runtime import Runtime
from .auth import AuthThrottle

RUNTIME = web.AppKey("exoclaw_runtime", Runtime)
SOCKETS = web.AppKey("exoclaw_sockets", weakref.WeakSet)
#: failed logins per client address, shared by /ws and the HTTP endpoints
AUTH_THROTTLE = web.AppKey("exoclaw_auth_throttle", AuthThrottle)
