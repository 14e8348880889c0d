"""The core's RPC methods (SPEC §4). Plugins add more through ``register_methods``."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from exoclaw_hooks import InvalidParams

from ..runtime import Runtime
from .protocol import opt_int


async def ping(rt: Runtime, params: dict[str, Any]) -> str:
    return "pong"


async def status(rt: Runtime, params: dict[str, Any]) -> dict[str, Any]:
    return await rt.status()


async def plugin_list(rt: Runtime, params: dict[str, Any]) -> list[dict[str, Any]]:
    return rt.loaded_wasm_plugins()


async def session_list(rt: Runtime, params: dict[str, Any]) -> list[dict[str, Any]]:
    agent_id = params.get("agent_id")
    if agent_id is not None and not isinstance(agent_id, str):
        raise InvalidParams("agent_id", "must be a string")
    limit = opt_int(params, "limit", maximum=100_000)
    sessions = await rt.store.list_sessions(agent_id=agent_id, limit=limit)
    return [
        {
            "key": s.key,
            "agent_id": s.agent_id,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
            "message_count": s.message_count,
            "tokens": s.tokens,
        }
        for s in sessions
    ]


async def chat_history(rt: Runtime, params: dict[str, Any]) -> list[dict[str, Any]]:
    session = params.get("session")
    if session is None:
        raise InvalidParams("session", "required")
    if not isinstance(session, str):
        raise InvalidParams("session", "must be a string")
    limit = opt_int(params, "limit", maximum=100_000)
    return await rt.store.history(session, limit)


METHODS: dict[str, Callable[[Runtime, dict[str, Any]], Awaitable[Any]]] = {
    "ping": ping,
    "status": status,
    "plugin.list": plugin_list,
    "session.list": session_list,
    "chat.history": chat_history,
}
