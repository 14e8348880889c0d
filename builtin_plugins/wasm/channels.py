"""Channel plugins (SPEC §7): webhook in → ``IncomingMessage``, reply out → ``OutgoingRequest``.

The blocking halves run in the ``wasm`` plugin's worker threads:

* :func:`verify` — the plugin's ``verify: {header, secret}``, compared in
  constant time BEFORE the WASM sees anything (401 on mismatch or absence).
* :func:`parse_incoming` — ``{"headers", "body"}`` to the WASM; its error
  becomes a 400 with its text, ``{"ignore": true}`` an :class:`Ignore`, any
  other answer a validated :class:`IncomingMessage` whose ``channel`` is the
  plugin's configured name (authoritative, whatever the plugin wrote).
* :func:`format_outgoing` — the WASM's request, placeholders left in place;
  the core fills ``{{secret:NAME}}`` from ``secrets`` and checks the host
  against ``allowed_hosts`` (the plugin's ``http:`` grants).

Sandbox failures (timeout, trap, out of memory, oversized or invalid
output) are the gateway's problem, not the platform's payload: 500; so is
an error the plugin sets in ``format_outgoing`` (a reply it cannot write).
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Mapping

from exoclaw_hooks import ChannelError, Ignore, IncomingMessage, OutgoingReply, OutgoingRequest, WebhookRequest

from .bridge import LoadedPlugin
from .callctx import CallContext, CallFailure
from .calls import call_export, failure_text

AUTH_FAILED = "authenticity check failed"


def verify(plugin: LoadedPlugin, headers: Mapping[str, str]) -> None:
    """Raise ``ChannelError(401)`` unless the verify header equals the secret (constant time)."""
    if plugin.verify is None:
        return
    header, secret_name = plugin.verify
    expected = plugin.secrets.get(secret_name)
    got = _lower(headers).get(header.lower())
    if not expected or got is None:
        raise ChannelError(401, AUTH_FAILED)
    if not hmac.compare_digest(got.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")):
        raise ChannelError(401, AUTH_FAILED)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        out.setdefault(str(k).lower(), str(v))
    return out


def _call(plugin: LoadedPlugin, export: str, payload: Any, refused_status: int, ctx: CallContext | None) -> Any:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        out = call_export(plugin, export, data, ctx)
    except CallFailure as failure:
        if failure.kind == "error":  # the plugin refused, with its reason
            raise ChannelError(refused_status, failure.detail or f"channel {plugin.name} refused ({export})") from None
        raise ChannelError(500, failure_text(plugin.name, failure, plugin.config, what="channel")) from None
    try:
        return json.loads(out)
    except (ValueError, UnicodeDecodeError):
        raise ChannelError(500, f"channel {plugin.name} returned invalid JSON from {export}") from None


def parse_incoming(
    plugin: LoadedPlugin, request: WebhookRequest, *, verified: bool = False, ctx: CallContext | None = None
) -> IncomingMessage | Ignore:
    """Verify (unless the caller just did), then ask the WASM (blocking)."""
    if not verified:
        verify(plugin, request.headers)
    headers = _lower(request.headers)
    if plugin.verify is not None:
        headers.pop(plugin.verify[0].lower(), None)  # the plugin never sees a secret
    body = request.body if isinstance(request.body, (bytes, bytearray)) else str(request.body).encode()
    answer = _call(plugin, "parse_incoming", {"headers": headers, "body": bytes(body).decode("utf-8", "replace")}, 400, ctx)
    return message_from(plugin.name, answer)


def message_from(channel: str, answer: Any) -> IncomingMessage | Ignore:
    """A plugin's normalized message, validated (``ChannelError(400)`` when malformed)."""
    if not isinstance(answer, dict):
        raise ChannelError(400, f"channel {channel}: parse_incoming must return an object")
    if answer.get("ignore") is True:
        return Ignore(str(answer.get("reason", "")) if isinstance(answer.get("reason"), str) else "")

    def text(key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = answer.get(key)
        if value is None:
            if required:
                raise ChannelError(400, f"channel {channel}: message has no {key}")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ChannelError(400, f"channel {channel}: message field {key} must be a string")
        return str(value)

    account = text("account", required=True)
    content = text("content", required=True)
    if not account:
        raise ChannelError(400, f"channel {channel}: message account is empty")
    peer = text("peer") or "main"
    reply_to = answer.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, dict):
        raise ChannelError(400, f"channel {channel}: message field reply_to must be an object")
    return IncomingMessage(
        channel=channel,
        account=account,
        content=content or "",
        peer=peer,
        guild=text("guild"),
        team=text("team"),
        message_id=text("message_id"),
        reply_to=reply_to,
    )


def format_outgoing(plugin: LoadedPlugin, reply: OutgoingReply, ctx: CallContext | None = None) -> OutgoingRequest:
    """Ask the WASM for the platform request (blocking); placeholders stay unsubstituted."""
    answer = _call(plugin, "format_outgoing", {"reply_to": dict(reply.reply_to or {}), "content": reply.content}, 500, ctx)
    where = f"channel {plugin.name}: format_outgoing"
    if not isinstance(answer, dict):
        raise ChannelError(500, f"{where} must return an object")
    method = answer.get("method", "POST")
    url = answer.get("url")
    headers = answer.get("headers") or {}
    if not isinstance(method, str) or not method.strip():
        raise ChannelError(500, f"{where}: method must be a string")
    if not isinstance(url, str) or not url:
        raise ChannelError(500, f"{where}: url must be a non-empty string")
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ChannelError(500, f"{where}: headers must be an object of strings")
    return OutgoingRequest(
        method=method.strip().upper(),
        url=url,
        headers=dict(headers),
        body=answer.get("body"),
        secrets=dict(plugin.secrets),
        allowed_hosts=plugin.grants.allowed_hosts,
    )

