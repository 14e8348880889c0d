"""Channel messages after the webhook was acknowledged: the turn, then the reply's delivery.

Nothing lost, nothing doubled (SPEC §7):

* the webhook is answered only once the message is committed to the inbox;
* the turn runs in the session's lane; its reply is committed to the inbox
  in the turn's own transaction, before the platform is called, so a
  restart (even a kill -9 right after the commit) re-sends the reply
  instead of running the turn again;
* a reply recorded as sent is never sent again (at least once, never twice
  after it was recorded);
* a platform that refuses (5xx, 429, connection error) is retried with
  backoff (the same policy as LLM calls, honouring ``Retry-After``) a
  bounded number of times, then the item is recorded as failed.

The channel plugin writes the outgoing request with ``{{secret:NAME}}``
placeholders; the values are substituted here, after the plugin returned,
and the destination host must be one the plugin was granted (``http:HOST``).
Logs only ever show the request as the plugin wrote it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from exoclaw_hooks import InboxItem, OutgoingReply, OutgoingRequest

from . import hookcall
from .agent.events import NoAgent, TurnEvent
from .agent.llm import RetryPolicy
from .logs import quote, redact, register_secret

log = logging.getLogger("exoclaw.channels")

PLACEHOLDER = re.compile(r"\{\{secret:([A-Za-z0-9_.-]+)\}\}")


class _LeavePending(Exception):
    """The gateway is stopping: the item stays pending and is answered after the restart."""


class DeliveryRefused(Exception):
    """The outgoing request may not be sent (ungranted host, unknown secret)."""


def substitute(value: Any, secrets: dict[str, str]) -> Any:
    """Fill ``{{secret:NAME}}`` placeholders in a string, or in every string of a JSON value."""
    if isinstance(value, str):
        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in secrets:
                raise DeliveryRefused(f"unknown secret {name}")
            return secrets[name]

        return PLACEHOLDER.sub(fill, value)
    if isinstance(value, dict):
        return {substitute(k, secrets): substitute(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, secrets) for v in value]
    return value


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (the date form is not used by chat platforms)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    return any(a == "*" or a.lower().strip("[]") == host for a in allowed)


class Channels:
    """Runs acknowledged channel messages and delivers their replies.

    A refused delivery is retried ``retry.max_retries`` times, the wait
    doubling between tries (about 2 + 4 + 8 s by default: a platform's short
    hiccup is ridden out) or as long as its ``Retry-After`` says, then
    recorded as failed.
    """

    #: seconds a claim on an inbox item lasts unless renewed: a crashed gateway's items are taken over after it
    lease_s = 30.0

    def __init__(self, rt: Any, *, retry: RetryPolicy | None = None):
        self.rt = rt
        self.retry = retry or RetryPolicy(max_retries=3, base_s=2.0, max_s=60.0)
        self.tasks: set[asyncio.Task[Any]] = set()
        #: this gateway's name on its inbox claims; the items it is handling now
        self.owner: str = getattr(rt, "instance_id", "") or "gateway"
        self.lease_s = float(getattr(rt.settings, "store_lease_s", self.lease_s))
        self.active: set[int] = set()
        self.sweeper: asyncio.Task[Any] | None = None

    def submit(self, item: InboxItem, *, claimed: bool = False) -> None:
        """Handle an item (claiming it first unless ``claimed``: only one gateway handles each)."""
        if self.rt.stopping:  # it stays pending in the inbox: answered after the restart
            return
        task = asyncio.get_running_loop().create_task(self._claimed(item, claimed))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _claimed(self, item: InboxItem, claimed: bool) -> None:
        if item.id in self.active:
            return
        if not claimed and not await self.rt.store.inbox_claim(self.owner, self.lease_s, ids=[item.id]):
            return  # another gateway has it
        self.active.add(item.id)
        try:
            await self.process(item)
        finally:
            self.active.discard(item.id)

    async def resume(self) -> int:
        """At start: answer what was acknowledged but not yet answered (and not held by another gateway);
        then keep renewing this gateway's claims and take over the items whose holder went away."""
        count = await self._take_over()
        if count:
            log.info("event=inbox_resume items=%d", count)
        if self.sweeper is None:
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return count

    async def _take_over(self) -> int:
        items = await self.rt.store.inbox_claim(self.owner, self.lease_s)
        for item in items:
            self.submit(item, claimed=True)
        return len(items)

    async def _sweep(self) -> None:
        while not self.rt.stopping:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if self.active:
                    await self.rt.store.inbox_renew(self.owner, sorted(self.active), self.lease_s)
                taken = await self._take_over()
                if taken:
                    log.info("event=inbox_takeover items=%d", taken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost database: try again next round
                log.warning("event=inbox_sweep_failed error=%s", quote(redact(str(exc))))

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()

    async def process(self, item: InboxItem) -> None:
        store = self.rt.store
        reply = item.reply
        try:
            if reply is None:
                reply = await self._run_turn(item)
                if reply is None:
                    await store.inbox_mark(item.id, "failed", error="no agent configured for this channel message")
                    return
            await self.deliver(item, reply)
        except _LeavePending:
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one message must not stop the others
            log.exception("event=channel_failed channel=%s error=%s", item.channel, quote(redact(str(exc))))
            await store.inbox_mark(item.id, "failed", error=redact(f"{type(exc).__name__}: {exc}"))

    async def _run_turn(self, item: InboxItem) -> str | None:
        """Run the item's turn; its reply is kept in the inbox in the turn's own transaction."""
        try:
            route = await self.rt.route(item.message)
        except NoAgent as exc:
            log.warning("event=channel_no_agent channel=%s error=%s", item.channel, quote(str(exc)))
            return None

        async def sink(event: TurnEvent) -> None:
            pass  # the reply is delivered whole, once the turn is stored

        outcome = await (await self.rt.submit(item.message, sink, route, inbox_id=item.id))
        if outcome.cancelled:
            raise _LeavePending  # answered after the restart
        if outcome.ok:
            return outcome.reply
        # a failed turn stored nothing: its apology is the reply
        reply = f"Sorry, I could not answer: {outcome.error}"
        await self.rt.store.inbox_answer(item.id, reply)
        return reply

    async def deliver(self, item: InboxItem, content: str) -> None:
        store, metrics = self.rt.store, self.rt.metrics
        reply_to = item.message.reply_to or {}
        try:
            request = await hookcall.call_first(
                self.rt.pm, "format_outgoing",
                reply=OutgoingReply(item.channel, reply_to, content),
            )
        except hookcall.HookError as exc:
            request = None
            reason = f"format_outgoing failed in plugin {exc.plugin}: {exc.error}"
        else:
            reason = "no plugin formats replies for this channel"
        if not isinstance(request, OutgoingRequest):
            await self._failed(item, redact(reason))
            return
        shown = f"{request.method} {request.url}"  # as the plugin wrote it: placeholders, no values
        try:
            for value in request.secrets.values():
                register_secret(value)
            url = substitute(request.url, dict(request.secrets))
            headers = {k: str(substitute(v, dict(request.secrets))) for k, v in request.headers.items()}
            body = substitute(request.body, dict(request.secrets))
            if not host_allowed(url, request.allowed_hosts):
                host = urlsplit(request.url).hostname or "?"
                raise DeliveryRefused(f"host {host} is not granted to channel {item.channel} (http:{host} missing)")
        except DeliveryRefused as exc:
            log.error("event=delivery_refused channel=%s request=%s reason=%s", item.channel, quote(shown), quote(str(exc)))
            metrics.webhooks.labels(item.channel, "delivery_refused").inc()
            await store.inbox_mark(item.id, "failed", error=str(exc))
            return
        data, json_body = (body.encode("utf-8"), None) if isinstance(body, str) else (None, body)
        attempts = self.retry.max_retries + 1
        for attempt in range(1, attempts + 1):
            status, error, retry_after = await self._send(request.method, url, headers, data, json_body)
            if status is not None and status < 300:
                await store.inbox_mark(item.id, "replied", reply_status=status)
                metrics.webhooks.labels(item.channel, "delivered").inc()
                log.info("event=reply_sent channel=%s request=%s status=%d attempt=%d", item.channel, quote(shown), status, attempt)
                return
            retryable = status is None or status == 429 or status >= 500
            log.warning(
                "event=reply_refused channel=%s request=%s status=%s attempt=%d error=%s",
                item.channel, quote(shown), status, attempt, quote(error or ""),
            )
            if not retryable or attempt == attempts:
                await self._failed(item, f"platform answered {status}" if status else (error or "send failed"), status)
                return
            await store.inbox_mark(item.id, "pending", reply_status=status, error=error or f"HTTP {status}")
            await asyncio.sleep(self.retry.delay(attempt - 1, retry_after))

    async def _failed(self, item: InboxItem, reason: str, status: int | None = None) -> None:
        self.rt.metrics.webhooks.labels(item.channel, "delivery_failed").inc()
        log.error("event=reply_failed channel=%s inbox_id=%d reason=%s", item.channel, item.id, quote(reason))
        await self.rt.store.inbox_mark(item.id, "failed", reply_status=status, error=reason)

    async def _send(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None, json_body: Any,
    ) -> tuple[int | None, str | None, float | None]:
        """(status, error, the answer's Retry-After in seconds) of one attempt."""
        import aiohttp

        try:
            async with self.rt.host.http().request(
                method, url, headers=headers, data=data,
                json=json_body if data is None and json_body is not None else None,
                timeout=aiohttp.ClientTimeout(total=30), allow_redirects=False,
            ) as resp:
                await resp.read()
                return resp.status, None, retry_after_s(resp.headers.get("Retry-After"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            # aiohttp errors can carry the URL, which carries secrets: redact
            return None, redact(f"{type(exc).__name__}: {exc}"), None

