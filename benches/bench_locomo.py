"""Long-conversation memory on LoCoMo's development split: evidence recall and context size (issue 15).

Each conversation is fed to a real gateway (every builtin plugin, loaded
through its entry point; SQLite on disk), one utterance per user turn of one
session of one person, written as a group chat delivers it:
``[<session date_time>] <speaker>: <text>``. The assistant answers each with
a short ``ok``. Then each question (categories 1–4) is sent as a turn of that
session; the provider captures the request the model would receive (system
prompt + messages) and fails the call, so the question turn is not stored:
every question sees the memory the conversation left. The captured context
is scored by ``locomo_measure`` next to the baselines on the same questions.

Run (prints the table; ``--markdown`` for the README)::

    python benches/bench_locomo.py [--context-tokens 4000] [--window 5] [--shares '{"recall": 0.8}']
                                   [--extractor rules|off] [--markdown]
    python -m pytest benches/bench_locomo.py -s      # the same, as part of the bench suite

The data is read from ``../shared/locomo-dev`` (or ``$EXOCLAW_LOCOMO_DIR``),
never copied into the project; without it the bench is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benches")]

import locomo_measure as measure  # noqa: E402

from exoclaw_hooks import AgentConfig, LLMRequest, ProviderError, StreamEnd, TextDelta, Usage, hookimpl  # noqa: E402


class Capture:
    """Provider ``capture``: ``ok`` to every turn, or, when ``capturing``, keep the request and fail the call."""

    def __init__(self) -> None:
        self.capturing = False
        self.captured: list[LLMRequest] = []

    @hookimpl
    def register_providers(self, register: Any, host: Any) -> None:
        register("capture", lambda settings: self)

    async def stream(self, request: LLMRequest) -> AsyncIterator[Any]:
        if self.capturing:
            self.captured.append(request)
            raise ProviderError("captured (the question turn is not stored)")
        yield TextDelta("ok")
        yield StreamEnd("end_turn", Usage(1, 1))


def context_text(request: LLMRequest) -> str:
    """What the model receives, as text: the system prompt and every message."""
    parts = [request.system]
    for m in request.messages:
        parts.append(m.content)
        parts.extend(r.content for r in m.tool_results)
    return "\n".join(p for p in parts if p)


async def run_gateway(conversations: list[measure.Conversation], memory: dict[str, Any]) -> tuple[measure.Scores, dict]:
    from tests.harness import make_settings, running_gateway

    scores = measure.Scores("exoclaw")
    timing = {"ingest_s": 0.0, "turns": 0, "questions": 0, "ask_s": 0.0}
    for conv in conversations:
        capture = Capture()
        with tempfile.TemporaryDirectory() as home:
            agent = AgentConfig(id="default", provider="capture", model="capture")
            settings = make_settings(data_dir=home, agents=[agent], memory=memory)
            async with running_gateway(settings, plugins=[("capture", capture)], persistent=True) as gw:
                async with gw.client() as c:
                    base = {"channel": "locomo", "account": conv.sample_id, "peer": "main"}
                    t0 = time.perf_counter()
                    for u in conv.utterances:
                        frames = await c.chat({**base, "content": u.line})
                        assert frames[-1].get("event") == "done", frames
                    timing["ingest_s"] += time.perf_counter() - t0
                    timing["turns"] += len(conv.utterances)
                    capture.capturing = True
                    t0 = time.perf_counter()
                    for q in conv.questions:
                        await c.chat({**base, "content": q.text})
                        scores.add(q, context_text(capture.captured[-1]), conv)
                    timing["ask_s"] += time.perf_counter() - t0
                    timing["questions"] += len(conv.questions)
    return scores, timing


def memory_settings(args: argparse.Namespace) -> dict[str, Any]:
    memory: dict[str, Any] = {"context_tokens": args.context_tokens, "episodic_window": args.window,
                              "extractor": args.extractor}
    if args.shares:
        memory["shares"] = json.loads(args.shares)
    return memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context-tokens", type=int, default=4000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--shares", default=None, help='JSON, e.g. \'{"recall": 0.7, "turn": 0.2, "fact": 0.1}\'')
    parser.add_argument("--extractor", default="rules", choices=("rules", "off"))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(argv)
    path = measure.data_dir()
    if path is None:
        print("LoCoMo dev split not found (../shared/locomo-dev or $EXOCLAW_LOCOMO_DIR): skipped")
        return 0
    conversations = measure.load(path)
    scores, timing = asyncio.run(run_gateway(conversations, memory_settings(args)))
    rows = [scores] + ([] if args.no_baselines else measure.baselines(conversations, args.context_tokens))
    print(measure.table(rows, markdown=args.markdown))
    print(f"\n{len(conversations)} conversations, {timing['turns']} turns fed in {timing['ingest_s']:.1f} s "
          f"({1000 * timing['ingest_s'] / max(1, timing['turns']):.2f} ms/turn through the WebSocket), "
          f"{timing['questions']} questions in {timing['ask_s']:.1f} s; memory settings {memory_settings(args)}")
    return 0


def test_locomo_evidence_recall(capsys):
    """The bench as part of the suite: prints the table (skipped without the data)."""
    import pytest

    if measure.data_dir() is None:
        pytest.skip("LoCoMo dev split not found (../shared/locomo-dev or $EXOCLAW_LOCOMO_DIR)")
    with capsys.disabled():
        main([])


if __name__ == "__main__":
    sys.exit(main())
