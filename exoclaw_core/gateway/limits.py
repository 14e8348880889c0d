"""What one HTTP request may cost the gateway: its body's size and the time it takes to arrive.

Both endpoints that read a body (the OpenAI face, webhooks) read it through
:func:`read_body`, so a client that announces a body and never sends it (a
half-open request, issue 16) is answered ``408`` after ``[gateway]
body_timeout_s`` instead of holding its connection forever; while it waits,
its connection may be shed for a newcomer at the connection cap.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .listener import waiting_for_client

#: what a JSON body may add around its ``max_message_bytes`` of message (the app's ``client_max_size``)
ENVELOPE_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"body larger than {limit} bytes")


class BodyTimeout(Exception):
    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        super().__init__(f"request body not received within {timeout_s:g} s")


class BodyInvalid(Exception):
    """The body broke HTTP's framing (a bad chunk, a short body): the client's mistake, a 400."""


class ClientGone(Exception):
    """The connection closed before the whole body arrived (nobody will read an answer)."""


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, at most ``limit`` bytes, within ``timeout_s``.

    Raises BodyTooLarge, BodyTimeout, BodyInvalid, or ClientGone (the
    connection closed, or was shed for a newcomer, before the body arrived).
    """
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(limit)
    try:
        with waiting_for_client(request):
            async with asyncio.timeout(timeout_s):
                body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(limit) from None
    except TimeoutError:
        # the rest is not coming: end the body here, so that aiohttp does not linger (up to
        # 10 s) reading it after the 408, and the connection closes once the answer is sent
        request.content.feed_eof()
        raise BodyTimeout(timeout_s) from None
    except ConnectionError:
        raise ClientGone() from None
    except HttpProcessingError as exc:
        raise BodyInvalid(f"malformed request body: {exc.message}") from None
    if len(body) > limit:
        raise BodyTooLarge(limit)
    return body


def close_after(response: web.StreamResponse) -> web.StreamResponse:
    """Close the connection once ``response`` is sent (its request's body was not read to the end)."""
    response.force_close()
    return response
