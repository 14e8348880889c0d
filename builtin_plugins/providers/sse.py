"""An incremental Server-Sent Events parser, shared by the HTTP providers.

It follows the WHATWG "event stream interpretation" rules: lines end with
CRLF, LF or CR; ``:`` starts a comment; a field without a colon has an empty
value; one leading space of a value is dropped; ``data`` lines are joined with
``\\n``; an empty line dispatches the event (when it had any ``data``); ``id``
persists across events (and is ignored when it contains NUL).

Feed it whatever the network delivered: a read may end in the middle of a
line, of a CRLF pair or of a multi-byte UTF-8 character. Only complete lines
are decoded (line ends are ASCII, so a complete line never ends inside a
character); the rest waits for the next read.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SSEEvent", "SSEParser", "SSEError"]

#: a line longer than this without a line end is refused (a broken or hostile server)
MAX_PENDING_BYTES = 16 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream is not an event stream we can parse."""


class SSEEvent(NamedTuple):
    """One dispatched event: ``event`` is ``None`` when the stream named none."""

    event: str | None
    data: str
    id: str | None = None


class SSEParser:
    """``feed(bytes) -> list[SSEEvent]`` as bytes arrive, ``close()`` at the end."""

    __slots__ = ("_pending", "_skip_lf", "_started", "_event", "_data", "_id", "retry")

    def __init__(self) -> None:
        self._pending = b""  # an incomplete last line
        self._skip_lf = False  # the previous read ended with CR: a leading LF belongs to it
        self._started = False  # past the optional byte-order mark
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        #: the reconnection time the server asked for (ms), if it did
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse one network read; return the events it completed."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:  # b"\n"
                chunk = chunk[1:]
        buf = self._pending + chunk if self._pending else chunk
        if not self._started:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._pending = buf
                return []
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        end = buf.rfind(b"\n")
        cr = buf.rfind(b"\r", end + 1)
        if cr > end:
            end = cr
            self._skip_lf = cr == len(buf) - 1
        if end < 0:
            if len(buf) > MAX_PENDING_BYTES:
                raise SSEError(f"event stream line longer than {MAX_PENDING_BYTES} bytes")
            self._pending = buf
            return []
        self._pending = buf[end + 1 :]
        text = buf[: end + 1].decode("utf-8", "replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty string after the last line end
        return self._lines(lines)

    def close(self) -> list[SSEEvent]:
        """The stream ended: an unterminated last line and event are dispatched.

        (The standard would drop them; servers that forget the final blank
        line exist, and a truncated event fails its JSON parse anyway.)
        """
        lines = []
        if self._pending:
            lines.append(self._pending.decode("utf-8", "replace"))
            self._pending = b""
        lines.append("")
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(SSEEvent(self._event, "\n".join(data), self._id))
                    data = self._data = []
                self._event = None
                continue
            if line.startswith("data:"):  # the common case first
                data.append(line[6:] if line.startswith("data: ") else line[5:])
                continue
            if line[0] == ":":
                continue
            name, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "event":
                self._event = value or None
            elif name == "data":  # "data" with no colon: an empty data line
                data.append(value)
            elif name == "id":
                if "\0" not in value:
                    self._id = value or None
            elif name == "retry":
                if value.isdigit():
                    self.retry = int(value)
        return out
