"""Throughput of the SSE parser (``builtin_plugins/providers/sse.py``).

Run: ``python -m pytest benches/bench_sse.py --benchmark-only``

Each benchmark parses a whole realistic stream, fed in network-sized reads,
and stores ``events_per_s`` (events / mean time) in ``extra_info`` (shown
with ``--benchmark-json``, printed at the end of the run with ``-s``); each
fails below the target of 100,000 events/s on one core.
"""

from __future__ import annotations

import json

import pytest

from builtin_plugins.providers.anthropic import AnthropicDecoder
from builtin_plugins.providers.openai import OpenAIDecoder
from builtin_plugins.providers.sse import SSEParser

N_DELTAS = 5000
WORDS = ["Hello", " wor", "ld,", " héllo", " ✓", " the", " quick", " brown", " fox", " 🦀"]
MIN_EVENTS_PER_S = 100_000
RESULTS: dict[str, float] = {}


def anthropic_stream() -> tuple[bytes, int]:
    """message_start, a text block of N_DELTAS text_delta events, a tool block, message_delta/stop."""
    def ev(name: str, data: dict) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    parts = [ev("message_start", {"type": "message_start", "message": {
        "id": "msg_01XyZ", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 1}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        ev("ping", {"type": "ping"})]
    for i in range(N_DELTAS):
        parts.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": WORDS[i % len(WORDS)]}}))
    parts.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    parts.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                      "stop_sequence": None}, "usage": {"output_tokens": N_DELTAS}}))
    parts.append(ev("message_stop", {"type": "message_stop"}))
    return "".join(parts).encode(), len(parts)


def openai_stream() -> tuple[bytes, int]:
    """N_DELTAS chat.completion.chunk events with usage: null, a finish chunk, a usage chunk, [DONE]."""
    head = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion.chunk",
            "created": 1741570283, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_eb9dce56a8"}
    parts = []
    for i in range(N_DELTAS):
        chunk = {**head, "choices": [{"index": 0, "delta": {"content": WORDS[i % len(WORDS)]},
                                      "logprobs": None, "finish_reason": None}], "usage": None}
        parts.append(f"data: {json.dumps(chunk)}\n\n")
    parts.append(f"data: {json.dumps({**head, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n")
    usage = {"prompt_tokens": 1117, "completion_tokens": N_DELTAS, "total_tokens": 1117 + N_DELTAS}
    parts.append(f"data: {json.dumps({**head, 'choices': [], 'usage': usage})}\n\n")
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode(), len(parts)


def reads(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def parse_all(chunks: list[bytes]) -> int:
    parser = SSEParser()
    count = 0
    for chunk in chunks:
        count += len(parser.feed(chunk))
    return count + len(parser.close())


def record(benchmark, name: str, n_events: int, **info: int) -> None:
    """Store events/s (nothing to store under ``--benchmark-disable``)."""
    if benchmark.stats is None:
        return
    rate = n_events / benchmark.stats.stats.mean
    benchmark.extra_info.update(events=n_events, events_per_s=round(rate), **info)
    RESULTS[name] = rate
    assert rate >= MIN_EVENTS_PER_S, f"{name}: {rate:,.0f} events/s"


def run(benchmark, name: str, stream: bytes, n_events: int, read_size: int) -> None:
    chunks = reads(stream, read_size)
    assert benchmark(parse_all, chunks) == n_events
    record(benchmark, name, n_events, bytes=len(stream), read_size=read_size)


@pytest.mark.parametrize("read_size", [4096, 256])
def test_anthropic_stream(benchmark, read_size):
    """Events/s parsing an Anthropic Messages stream (~5,000 text_delta events) in reads of read_size bytes."""
    stream, n = anthropic_stream()
    run(benchmark, f"anthropic, {read_size}-byte reads", stream, n, read_size)


@pytest.mark.parametrize("read_size", [4096, 256])
def test_openai_stream(benchmark, read_size):
    """Events/s parsing an OpenAI chat.completion.chunk stream (~5,000 chunks) in reads of read_size bytes."""
    stream, n = openai_stream()
    run(benchmark, f"openai, {read_size}-byte reads", stream, n, read_size)


def test_one_event_per_read(benchmark):
    """Events/s when every network read carries exactly one Anthropic event (the live-streaming case)."""
    stream, n = anthropic_stream()
    chunks = [part + b"\n\n" for part in stream.split(b"\n\n")[:-1]]
    assert benchmark(parse_all, chunks) == n
    record(benchmark, "anthropic, one event per read", n)


def decode_all(chunks: list[bytes], decoder_cls: type) -> int:
    parser, decoder, count = SSEParser(), decoder_cls(), 0
    for chunk in chunks:
        for event in parser.feed(chunk):
            count += len(decoder.feed(event, json.loads))
    assert decoder.done
    return count


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_parse_and_decode(benchmark, api):
    """Events/s through the whole provider pipeline: SSE parser + json.loads + the provider's decoder (4 KiB reads)."""
    stream, n = anthropic_stream() if api == "anthropic" else openai_stream()
    decoder_cls = AnthropicDecoder if api == "anthropic" else OpenAIDecoder
    assert benchmark(decode_all, reads(stream, 4096), decoder_cls) == N_DELTAS + 1  # text deltas + StreamEnd
    record(benchmark, f"{api}, parse + JSON + decode", n)


def teardown_module(module):
    for name, rate in RESULTS.items():
        print(f"\nSSE parser, {name}: {rate:,.0f} events/s")
