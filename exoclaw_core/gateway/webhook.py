"""``POST /webhook/{channel}``: a platform's webhook, acknowledged once stored (SPEC §7).

404 unknown channel, 401 failed authenticity check (before any parsing),
400 a payload the plugin rejects (or a parsed message whose text is not
proper Unicode, before it reaches the inbox), 408 a body that does not
arrive within ``body_timeout_s``, 413 an oversize body; otherwise 200 as
soon as the message is committed to the inbox — the turn and the reply
follow in the background, so a slow model never makes a platform retry.
"""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from exoclaw_hooks import ChannelError, Ignore, InboxItem, IncomingMessage, WebhookRequest

from .. import hookcall
from ..logs import quote
from . import text
from .auth import origin_allowed
from .keys import RUNTIME
from .limits import BodyInvalid, BodyTimeout, BodyTooLarge, ClientGone, close_after, read_body

log = logging.getLogger("exoclaw.webhook")


def _answer(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


async def webhook_handler(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    channel = request.match_info["channel"]
    metrics = rt.metrics.webhooks
    if not origin_allowed(request.headers.get("Origin"), rt.settings.gateway.allowed_origins):
        # platforms send no Origin; a browser page must not drive a local gateway
        metrics.labels("-", "forbidden").inc()
        return _answer(403, ok=False, error="origin not allowed")
    gw = rt.settings.gateway
    try:
        body = await read_body(request, gw.max_message_bytes, gw.body_timeout_s)
    except BodyTooLarge as exc:
        metrics.labels("-", "too_large").inc()
        return _answer(413, ok=False, error=str(exc))
    except BodyTimeout as exc:
        metrics.labels("-", "timeout").inc()
        return close_after(_answer(408, ok=False, error=str(exc)))
    except (BodyInvalid, ClientGone) as exc:
        metrics.labels("-", "rejected").inc()
        return close_after(_answer(400, ok=False, error=str(exc) or "the connection closed before the body arrived"))
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        parsed = await hookcall.call_first(
            rt.pm, "parse_incoming", request=WebhookRequest(channel, headers, body)
        )
    except hookcall.HookError as exc:
        err = exc.error
        if isinstance(err, ChannelError):
            outcome = {401: "unauthorized", 400: "rejected"}.get(err.status, "rejected")
            metrics.labels(channel, outcome).inc()
            log.warning("event=webhook_refused channel=%s status=%d reason=%s", quote(channel), err.status, quote(err.reason))
            return _answer(err.status, ok=False, error=err.reason)
        metrics.labels(channel, "error").inc()
        log.error("event=webhook_failed channel=%s plugin=%s error=%s", quote(channel), exc.plugin, quote(str(err)))
        return _answer(500, ok=False, error="the channel plugin failed")
    if parsed is None:
        metrics.labels("unknown", "not_found").inc()
        return _answer(404, ok=False, error=f"unknown channel: {channel}")
    if isinstance(parsed, Ignore):
        metrics.labels(channel, "ignored").inc()
        return _answer(200, ok=True, ignored=True)
    if not isinstance(parsed, IncomingMessage):
        metrics.labels(channel, "error").inc()
        return _answer(500, ok=False, error="the channel plugin returned no message")
    bad = _bad_text(parsed)
    if bad is not None:
        metrics.labels(channel, "rejected").inc()
        log.warning("event=webhook_refused channel=%s status=400 reason=%s", quote(channel), quote(bad))
        return _answer(400, ok=False, error=bad)
    message_id = parsed.message_id or f"auto-{uuid.uuid4().hex}"
    inbox_id, is_new = await rt.store.inbox_add(channel, message_id, parsed)
    if not is_new:
        metrics.labels(channel, "duplicate").inc()
        log.info("event=webhook_duplicate channel=%s message_id=%s", quote(channel), quote(message_id))
        return _answer(200, ok=True, duplicate=True)
    metrics.labels(channel, "accepted").inc()
    log.info("event=webhook_accepted channel=%s inbox_id=%d", quote(channel), inbox_id)
    rt.channels.submit(InboxItem(inbox_id, channel, message_id, parsed, "pending"))
    return _answer(200, ok=True, id=inbox_id)


def _bad_text(message: IncomingMessage) -> str | None:
    """Why a channel plugin's parsed message cannot enter the inbox (not proper Unicode), or None."""
    for name in ("channel", "account", "peer", "guild", "team", "content", "message_id"):
        value = getattr(message, name)
        why = text.problem(value, nul=True) if isinstance(value, str) else None
        if why is not None:
            return f"the parsed message's {name} {why}"
    bad = text.find_bad(message.reply_to, "reply_to") if message.reply_to else None
    return None if bad is None else f"the parsed message's {bad[0]} {bad[1]}"
