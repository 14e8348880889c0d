"""The incremental SSE parser: line ends, fields, and reads split anywhere."""

from __future__ import annotations

import pytest

from builtin_plugins.providers import sse as sse_module
from builtin_plugins.providers.sse import SSEError, SSEEvent, SSEParser

# Every feature at once: names, ids, comments, multi-line data, no-colon fields,
# a value keeping its second space, multi-byte characters, all three line ends.
STREAM = (
    b"\xef\xbb\xbf: a comment first\r\n"
    b"event: message_start\r\n"
    b"data: {\"text\": \"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\xa6\x80\"}\r\n"
    b"\r\n"
    b"id: 7\n"
    b"data:line one\n"
    b"data:  line two keeps one space\n"
    b"data\n"
    b"\n"
    b"event: ping\r"
    b"data: {}\r"
    b"\r"
    b":keepalive\n"
    b"retry: 1500\n"
    b"event: named\n"
    b"\n"  # no data: not dispatched, and the name does not leak to the next event
    b"data: last \xe6\x97\xa5\xe6\x9c\xac\n"
    b"\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"text": "héllo ✓ 🦀"}', None),
    SSEEvent(None, "line one\n line two keeps one space\n", "7"),
    SSEEvent("ping", "{}", "7"),
    SSEEvent(None, "last 日本", "7"),
]


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def test_whole_stream():
    assert parse(STREAM) == EXPECTED


@pytest.mark.parametrize("offset", range(1, len(STREAM)))
def test_split_at_every_byte_offset(offset):
    assert parse(STREAM[:offset], STREAM[offset:]) == EXPECTED


def test_one_byte_at_a_time():
    assert parse(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_three_way_splits_around_crlf_and_multibyte_chars():
    interesting = [i for i in range(1, len(STREAM)) if STREAM[i - 1] in b"\r\n" or STREAM[i - 1] >= 0x80]
    for a in interesting:
        for b in (a + 1, a + 2, a + 3):
            assert parse(STREAM[:a], STREAM[a:b], STREAM[b:]) == EXPECTED, (a, b)


def test_crlf_split_across_reads_is_one_line_end():
    # were the LF taken as a second line end, the empty line would dispatch "a" alone
    assert parse(b"data: a\r", b"\ndata: b\n\n") == [SSEEvent(None, "a\nb")]


def test_lone_cr_then_more_text_in_the_same_read():
    assert parse(b"data: a\rdata: b\r\rdata: c\r", b"\r") == [SSEEvent(None, "a\nb"), SSEEvent(None, "c")]


def test_field_without_colon_and_empty_values():
    assert parse(b"data\ndata:\ndata: \n\n") == [SSEEvent(None, "\n\n")]
    assert parse(b"event\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_only_one_leading_space_is_stripped():
    assert parse(b"data:   three\n\n") == [SSEEvent(None, "  three")]
    assert parse(b"event:  spaced\ndata: x\n\n") == [SSEEvent(" spaced", "x")]


def test_comments_and_unknown_fields_are_ignored():
    assert parse(b": hi\nfoo: bar\ndata: x\n:bye\n\n") == [SSEEvent(None, "x")]


def test_ids_persist_reset_and_refuse_nul():
    events = parse(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x00x\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["1", "1", "1", None]


def test_retry_is_recorded():
    parser = SSEParser()
    parser.feed(b"retry: 3000\nretry: soon\n\n")
    assert parser.retry == 3000


def test_event_name_applies_to_one_event_only():
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [SSEEvent("a", "1"), SSEEvent(None, "2")]


def test_close_dispatches_an_unterminated_last_event():
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.close() == [SSEEvent(None, "[DONE]")]
    parser = SSEParser()
    assert parser.feed(b"data: x\n") == []
    assert parser.close() == [SSEEvent(None, "x")]
    assert SSEParser().close() == []


def test_bom_only_at_start():
    assert parse(b"\xef\xbb", b"\xbfdata: x\n\n") == [SSEEvent(None, "x")]
    assert parse(b"data: \xef\xbb\xbfx\n\n") == [SSEEvent(None, "\ufeffx")]


def test_invalid_utf8_is_replaced_not_fatal():
    assert parse(b"data: \xff\xfe ok\n\n") == [SSEEvent(None, "\ufffd\ufffd ok")]


def test_empty_feeds():
    parser = SSEParser()
    assert parser.feed(b"") == []
    assert parser.feed(b"data: x\n") == [] and parser.feed(b"") == [] and parser.feed(b"\n") == [SSEEvent(None, "x")]


def test_a_line_without_end_is_bounded(monkeypatch):
    monkeypatch.setattr(sse_module, "MAX_PENDING_BYTES", 100)
    parser = SSEParser()
    parser.feed(b"data: " + b"x" * 50)
    with pytest.raises(SSEError):
        parser.feed(b"x" * 60)


def test_events_are_returned_as_soon_as_complete():
    parser = SSEParser()
    assert parser.feed(b"event: a\ndata: 1\n") == []
    assert parser.feed(b"\nevent: b\ndata: 2\n\nevent: c\n") == [SSEEvent("a", "1"), SSEEvent("b", "2")]
