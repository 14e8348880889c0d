"""``build_context``: one budget shared by sections and the window; fixed parts first; a plugin's own kind."""

from __future__ import annotations

from exoclaw_core.agent.context import build_context, part_tokens, turn_text
from exoclaw_hooks import (
    AgentConfig,
    ContextPart,
    IncomingMessage,
    Message,
    ToolCall,
    ToolResult,
    Turn,
    estimate_tokens,
)

AGENT = AgentConfig("default", "echo", "echo")
NEW = IncomingMessage("test", "alice", "what's my dog's name?")
HEAD = "Remembered:"


def turn(seq: int, text: str = "", tool: bool = False) -> ContextPart:
    msgs = [Message("user", f"user {seq} {text}")]
    if tool:
        msgs += [
            Message("assistant", "", tool_calls=(ToolCall(f"t{seq}", "echo", {"text": "x" * 20}),)),
            Message("tool", tool_results=(ToolResult(f"t{seq}", "x" * 20),)),
        ]
    msgs.append(Message("assistant", f"reply {seq}"))
    return ContextPart(kind="turn", turn=Turn(messages=tuple(msgs), seq=seq))


def fact(text: str, relevance: float, kind: str = "fact", order: float = 0.0) -> ContextPart:
    return ContextPart(kind=kind, text=text, relevance=relevance, heading=HEAD if kind == "fact" else f"{kind}:",
                       order=order)


SOUL = ContextPart(kind="soul", text="You are Claw. " * 10)
ROOMY = 100_000


def test_order_soul_prompt_sections_then_window_by_seq_then_message():
    agent = AgentConfig("default", "echo", "echo", system_prompt="Be brief.")
    parts = [turn(3), fact("low", 0.5), turn(1), SOUL, fact("high", 3.0), turn(2), fact("mid", 1.0)]
    ctx = build_context(agent, NEW, parts, ROOMY)
    assert ctx.system == SOUL.text + "\n\nBe brief.\n\n" + HEAD + "\nhigh\nmid\nlow"
    assert [m.content for m in ctx.messages] == [
        "user 1 ", "reply 1", "user 2 ", "reply 2", "user 3 ", "reply 3", NEW.content]
    assert ctx.dropped == {}
    assert set(ctx.composition) == {"soul", "system", "message", "fact", "window"}
    assert ctx.tokens == sum(ctx.composition.values())


def test_a_section_is_shown_in_its_parts_order_after_choosing_by_relevance():
    parts = [fact("third", 5.0, "recall", order=3), fact("first", 1.0, "recall", order=1),
             fact("second", 9.0, "recall", order=2)]
    ctx = build_context(AGENT, NEW, parts, ROOMY)
    assert ctx.system == "recall:\nfirst\nsecond\nthird"


def test_shares_split_the_budget_and_an_unused_share_flows_to_the_others():
    facts = [fact(f"fact {i} " + "f" * 36, 10 - i) for i in range(10)]  # ~11 tokens each
    turns = [turn(i, "t" * 80) for i in range(1, 11)]  # ~27 tokens each
    fixed = estimate_tokens(NEW.content)
    budget = fixed + 200
    even = build_context(AGENT, NEW, facts + turns, budget, {"fact": 0.5, "turn": 0.5})
    assert 80 <= even.composition["fact"] <= 100 and 80 <= even.composition["window"] <= 100
    # no facts at all: the window gets the whole budget
    alone = build_context(AGENT, NEW, turns, budget, {"fact": 0.5, "turn": 0.5})
    assert alone.composition["window"] > 160 and alone.tokens <= budget
    # the least relevant facts and the oldest turns are the ones left out
    kept = [line for line in even.system.splitlines()[1:]]
    assert kept == [f.text for f in facts[: len(kept)]]
    assert [m.content for m in even.messages if m.role == "user"][-2] == "user 10 " + "t" * 80


def test_the_fixed_parts_are_never_dropped_even_over_the_budget():
    big = IncomingMessage("t", "a", "x" * 4000)
    ctx = build_context(AGENT, big, [SOUL, fact("f", 1.0), turn(1)], 50)
    assert ctx.system == SOUL.text
    assert [m.content for m in ctx.messages] == [big.content]
    assert ctx.dropped == {"fact": 1, "window": 1} or ctx.dropped == {"fact": 1, "turn": 1}


def test_turns_are_dropped_whole_and_newest_are_kept():
    parts = [turn(1, tool=True), turn(2, tool=True), turn(3)]
    cost = [part_tokens(p) for p in parts]
    budget = estimate_tokens(NEW.content) + cost[2] + cost[1]
    ctx = build_context(AGENT, NEW, parts, budget, {"turn": 1.0})
    roles = [m.role for m in ctx.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant", "user"]
    assert ctx.messages[0].content == "user 2 "


def test_a_part_that_does_not_fit_is_skipped_for_a_smaller_one():
    parts = [fact("x" * 400, 9.0), fact("small", 1.0)]
    ctx = build_context(AGENT, NEW, parts, estimate_tokens(NEW.content) + 20, {"fact": 1.0})
    assert ctx.system.endswith("small") and "xxxx" not in ctx.system


def test_a_plugin_section_of_its_own_kind_is_packed_not_dropped():
    parts = [fact("a calendar entry", 1.0, "calendar"), fact("a fact", 1.0)]
    ctx = build_context(AGENT, NEW, parts, ROOMY)
    assert "calendar:\na calendar entry" in ctx.system and ctx.composition["calendar"] > 0


def test_duplicates_and_junk_are_ignored():
    parts = [fact("same", 1.0), fact("same", 2.0), turn(1), turn(1), "junk", None,
             ContextPart(kind="fact"), ContextPart(kind="turn")]
    ctx = build_context(AGENT, NEW, parts, ROOMY)  # type: ignore[arg-type]
    assert ctx.system == HEAD + "\nsame"
    assert [m.content for m in ctx.messages] == ["user 1 ", "reply 1", NEW.content]


def test_a_part_may_say_its_own_token_count():
    ctx = build_context(AGENT, NEW, [ContextPart(kind="fact", text="x", tokens=7)], ROOMY)
    assert ctx.composition["fact"] == 7


def test_system_extra_follows_the_sections_and_counts():
    new = IncomingMessage("t", "a", "hi", system_extra="Answer in French.")
    ctx = build_context(AGENT, new, [fact("f", 1.0)], ROOMY)
    assert ctx.system.endswith("\n\nAnswer in French.")
    assert ctx.composition["system"] == estimate_tokens("Answer in French.")


def test_turn_text_counts_tool_calls_as_json():
    t = turn(1, tool=True).turn
    assert '{"text": "' + "x" * 20 + '"}' in turn_text(t)


def test_dense_scripts_count_a_token_per_character():
    assert estimate_tokens("日本語のテキスト") == 8 and estimate_tokens("hello world") == 3
