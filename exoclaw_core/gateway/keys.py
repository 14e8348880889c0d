"""Typed keys of what the aiohttp application holds."""

from __future__ import annotations

import weakref

from aiohttp import web

from ..runtime import Runtime

RUNTIME = web.AppKey("exoclaw_runtime", Runtime)
SOCKETS = web.AppKey("exoclaw_sockets", weakref.WeakSet)
