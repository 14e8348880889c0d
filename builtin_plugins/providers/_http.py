"""What the HTTP providers share: one streamed POST read as SSE, and error mapping.

A provider module supplies only its wire format (URL, headers, body, and a
decoder turning SSE events into stream events); :class:`SSEProvider` does
the rest:

* the request goes through the gateway's shared session (``host.http()``),
  with a connect timeout and a maximum gap between chunks (``sock_read``);
* failures become :class:`ProviderError` with a short reason —
  ``connection refused (URL)``, ``timeout (URL)``, the provider's own message
  for HTTP errors (retryable for 408, 429, 5xx, with ``retry_after``),
  ``stream ended before completion`` — and ``output_started`` once anything
  was yielded. A failure to reach the server names the URL it tried (without
  credentials or query string: see :func:`safe_url`), so a wrong ``base_url``
  or a missing network is obvious;
* the API key never reaches a log line or a reason: headers are logged
  redacted and every reason is scrubbed of the key.

The provider never retries: the core does, and falls back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import errno
import json
import logging
from contextlib import aclosing
from typing import Any, AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from exoclaw_hooks import ConfigError, LLMRequest, ProviderError, ProviderSettings, StreamEnd, StreamEvent

from .sse import SSEError, SSEEvent, SSEParser

log = logging.getLogger(__name__)

CUT = "stream ended before completion"
RETRYABLE_STATUS = frozenset({408, 429})
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
MAX_ERROR_BODY = 64 * 1024
MAX_REASON = 300

JsonLoader = Callable[[str], Any]


def timeouts(settings: ProviderSettings) -> aiohttp.ClientTimeout:
    """Connect timeout and maximum gap between chunks, from ``timeout_s`` and options."""
    values = {}
    for key in ("connect_timeout_s", "read_timeout_s"):
        value = settings.options.get(key, settings.timeout_s)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{settings.provider}: {key} must be a positive number (got {value!r})")
        values[key] = float(value)
    connect = values["connect_timeout_s"]
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=values["read_timeout_s"])


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit for a log line: credentials replaced by ``[redacted]``."""
    return {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def safe_url(url: str) -> str:
    """``url`` fit for an error or a log line: no user, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the configured base_url"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrub(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` in it (a server may echo the key back)."""
    if secret and len(secret) >= 4 and secret in text:
        text = text.replace(secret, "[redacted]")
    return text


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(float(raw) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max((when - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0.0)


def error_message(body: Any) -> str | None:
    """The human message of an error body (``{"error": {"message": ...}}`` and kin)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    if isinstance(error, str) and error.strip():
        return error.strip()
    if isinstance(error, dict):
        for key in ("message", "detail"):
            if isinstance(error.get(key), str) and error[key].strip():
                return error[key].strip()
    return None


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def http_error(status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
    """The error for an HTTP status >= 400, or a 2xx that is JSON instead of a stream."""
    try:
        message = error_message(json.loads(raw))
    except ValueError:
        message = None
    if status < 400:
        return ProviderError(short(message) if message else "provider answered JSON, not an event stream",
                             status=status)
    retryable = status in RETRYABLE_STATUS or status >= 500
    should = headers.get("x-should-retry", "").lower()
    if should in ("true", "false"):
        retryable = should == "true"
    return ProviderError(
        short(message) if message else f"HTTP {status}",
        retryable=retryable,
        retry_after=retry_after(headers),
        status=status,
    )


async def read_limited(content: aiohttp.StreamReader, limit: int = MAX_ERROR_BODY) -> bytes:
    """The body, up to ``limit`` bytes (``read(n)`` alone may stop at a packet boundary)."""
    raw = b""
    while len(raw) < limit:
        chunk = await content.read(limit - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


class SSECall:
    """One POST whose answer is an event stream: ``async for ev in call.events()``."""

    def __init__(self, session: Any, url: str, headers: Mapping[str, str], body: Any,
                 timeout: aiohttp.ClientTimeout, name: str):
        self.session, self.url, self.headers, self.body = session, url, headers, body
        self.timeout, self.name = timeout, name
        self.at_eof = False  # the body ended: what is parsed now is the stream's tail
        self._responded = False

    async def events(self) -> AsyncIterator[SSEEvent]:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: POST %s headers=%s", self.name, self.url, redact(self.headers))
        data = json.dumps(self.body, ensure_ascii=False).encode()
        try:
            async with self.session.post(self.url, data=data, headers=self.headers,
                                         timeout=self.timeout, raise_for_status=False) as resp:
                self._responded = True
                log.debug("%s: HTTP %s", self.name, resp.status)
                if resp.status >= 400 or resp.content_type == "application/json":
                    raise http_error(resp.status, resp.headers, await read_limited(resp.content))
                parser = SSEParser()
                async for chunk in resp.content.iter_any():
                    for event in parser.feed(chunk):
                        yield event
                self.at_eof = True
                for event in parser.close():
                    yield event
        except (ProviderError, GeneratorExit):
            raise
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise self._failed(exc, f"timeout ({safe_url(self.url)})") from None
        except aiohttp.ClientConnectorError as exc:
            if getattr(exc.os_error, "errno", None) == errno.ECONNREFUSED:
                raise self._failed(exc, f"connection refused ({safe_url(self.url)})") from None
            detail = getattr(exc.os_error, "strerror", None) or type(exc).__name__
            raise self._failed(exc, f"cannot connect to {safe_url(self.url)} ({detail})") from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            if self._responded:
                raise self._failed(exc, CUT) from None
            raise self._failed(exc, f"server disconnected ({safe_url(self.url)})") from None
        except SSEError as exc:
            raise self._failed(exc, str(exc)) from None
        except aiohttp.ClientError as exc:
            raise self._failed(exc, f"request failed ({type(exc).__name__})") from None
        except ValueError as exc:  # aiohttp refuses the request itself (e.g. credentials in the URL and a header)
            raise self._failed(exc, f"cannot send the request to {safe_url(self.url)} ({short(str(exc))})") from None

    def _failed(self, exc: BaseException, reason: str) -> ProviderError:
        log.debug("%s: %s (%s)", self.name, reason, type(exc).__name__)
        return ProviderError(reason)

    def load_json(self, data: str) -> Any:
        """Parse one event's data; a truncated tail means the stream was cut."""
        try:
            return json.loads(data)
        except ValueError:
            if self.at_eof:
                raise ProviderError(CUT) from None
            raise ProviderError(f"provider sent invalid JSON in its stream: {short(data)[:80]!r}") from None


class Decoder:
    """Turns one provider's SSE events into stream events; ``done`` after the last."""

    done = False

    def feed(self, sse: SSEEvent, load: JsonLoader) -> Iterable[StreamEvent]:
        raise NotImplementedError


class SSEProvider:
    """A provider whose API streams SSE over a POST; subclasses give the wire format."""

    name = "sse"

    def __init__(self, settings: ProviderSettings, host: Any):
        self.settings, self.host = settings, host
        self.timeout = timeouts(settings)  # invalid options fail at start-up

    # --- the wire format (subclasses)
    def url(self) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def body(self, request: LLMRequest) -> dict[str, Any]:
        raise NotImplementedError

    def decoder(self) -> Decoder:
        raise NotImplementedError

    # --- shared
    def model(self, request: LLMRequest) -> str:
        return request.model or self.settings.model

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Yield ``TextDelta`` / ``ToolUseEvent`` as they arrive, then one ``StreamEnd``."""
        call = SSECall(self.host.http(), self.url(), self.headers(), self.body(request),
                       self.timeout, self.name)
        decoder = self.decoder()
        started = False
        try:
            async with aclosing(call.events()) as events:
                async for sse in events:
                    try:
                        out = decoder.feed(sse, call.load_json)
                    except (LookupError, TypeError, AttributeError, ValueError) as exc:
                        log.debug("%s: malformed event %r: %s", self.name, sse.event, type(exc).__name__)
                        raise ProviderError(f"provider sent a malformed {sse.event or 'event'}") from None
                    for event in out:
                        started = started or not isinstance(event, StreamEnd)
                        yield event
                    if decoder.done:
                        return
            raise ProviderError(CUT)
        except ProviderError as exc:
            failure = exc
        # Raised outside the except block, so no __context__ chain travels with it:
        # neither the unscrubbed reason nor an aiohttp error (its request_info holds the headers).
        reason = scrub(failure.reason, self.settings.api_key)
        log.debug("%s: failed: %s", self.name, reason)
        raise ProviderError(
            reason, retryable=failure.retryable, retry_after=failure.retry_after,
            output_started=started or failure.output_started, status=failure.status,
        )
