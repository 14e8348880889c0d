"""``build_context``: order (soul, facts by relevance, turns by seq, new message) and trimming order."""

from __future__ import annotations

from exoclaw_core.agent.context import (
    FACTS_HEADER,
    build_context,
    estimate_tokens,
    turn_chars,
)
from exoclaw_hooks import (
    AgentConfig,
    ContextPart,
    IncomingMessage,
    Message,
    ToolCall,
    ToolResult,
    Turn,
)

AGENT = AgentConfig("default", "echo", "echo")
NEW = IncomingMessage("test", "alice", "what's my dog's name?")


def turn(seq: int, text: str = "", tool: bool = False) -> ContextPart:
    msgs = [Message("user", f"user {seq} {text}")]
    if tool:
        msgs += [
            Message("assistant", "", tool_calls=(ToolCall(f"t{seq}", "echo", {"text": "x" * 20}),)),
            Message("tool", tool_results=(ToolResult(f"t{seq}", "x" * 20),)),
        ]
    msgs.append(Message("assistant", f"reply {seq}"))
    return ContextPart(kind="turn", turn=Turn(messages=tuple(msgs), seq=seq))


def fact(text: str, relevance: float) -> ContextPart:
    return ContextPart(kind="fact", text=text, relevance=relevance)


SOUL = ContextPart(kind="soul", text="You are Claw. " * 10)


def test_order_soul_then_prompt_then_facts_by_relevance_then_turns_by_seq_then_message():
    agent = AgentConfig("default", "echo", "echo", system_prompt="Be brief.")
    parts = [turn(3), fact("low", 0.5), turn(1), SOUL, fact("high", 3.0), turn(2), fact("mid", 1.0)]
    ctx = build_context(agent, NEW, parts, 4000)
    assert ctx.system == f"{SOUL.text}\n\nBe brief.\n\n{FACTS_HEADER}\n- high\n- mid\n- low"
    assert [m.content for m in ctx.messages] == [
        "user 1 ", "reply 1", "user 2 ", "reply 2", "user 3 ", "reply 3", "what's my dog's name?",
    ]
    assert (ctx.facts, ctx.turns, ctx.dropped_facts, ctx.dropped_turns) == (3, 3, 0, 0)


def test_trimming_drops_least_relevant_facts_first_then_oldest_turns():
    parts = [SOUL, turn(1, "a" * 200), turn(2, "b" * 200), fact("f-high " * 10, 3.0), fact("f-low " * 10, 1.0)]
    full = build_context(AGENT, NEW, parts, 100_000)
    # just short of everything: only the least relevant fact goes
    ctx = build_context(AGENT, NEW, parts, full.tokens - 1)
    assert (ctx.facts, ctx.turns, ctx.dropped_facts, ctx.dropped_turns) == (1, 2, 1, 0)
    assert "f-high" in ctx.system and "f-low" not in ctx.system
    # less: both facts go before any turn
    ctx = build_context(AGENT, NEW, parts, full.tokens - 40)
    assert (ctx.facts, ctx.turns, ctx.dropped_facts) == (0, 2, 2)
    assert FACTS_HEADER not in ctx.system
    # less again: then the oldest turn
    ctx = build_context(AGENT, NEW, parts, full.tokens - 80)
    assert (ctx.facts, ctx.turns, ctx.dropped_turns) == (0, 1, 1)
    assert ctx.messages[0].content.startswith("user 2")
    assert ctx.tokens <= full.tokens - 80


def test_soul_and_new_message_are_never_dropped_even_over_the_limit():
    parts = [SOUL, turn(1), fact("a fact", 1.0)]
    ctx = build_context(AGENT, NEW, parts, 1)
    assert ctx.system == SOUL.text
    assert [m.content for m in ctx.messages] == [NEW.content]
    assert (ctx.dropped_facts, ctx.dropped_turns) == (1, 1)
    assert ctx.tokens == estimate_tokens(SOUL.text) + estimate_tokens(NEW.content)  # over the limit, still sent


def test_turns_are_dropped_whole_so_a_tool_result_keeps_its_call():
    parts = [turn(1, tool=True), turn(2, tool=True), turn(3, tool=True)]
    full = build_context(AGENT, NEW, parts, 100_000)
    for limit in range(1, full.tokens + 1, 3):
        ctx = build_context(AGENT, NEW, parts, limit)
        msgs = ctx.messages
        assert msgs[0].role == "user"
        for k, m in enumerate(msgs):
            if m.role == "tool":
                assert msgs[k - 1].tool_calls and msgs[k - 1].tool_calls[0].id == m.tool_results[0].tool_use_id
        assert len(msgs) == 4 * ctx.turns + 1


def test_duplicates_and_junk_are_ignored():
    parts = [turn(1), turn(1), fact("same", 1.0), fact("same", 2.0), "not a part", None,
             ContextPart(kind="turn"), ContextPart(kind="fact", text=""), ContextPart(kind="soul", text="")]
    ctx = build_context(AGENT, NEW, parts, 4000)  # type: ignore[arg-type]
    assert (ctx.turns, ctx.facts) == (1, 1)
    assert ctx.system == f"{FACTS_HEADER}\n- same"


def test_a_part_may_say_its_own_token_count():
    big = ContextPart(kind="fact", text="short", relevance=1.0, tokens=500)
    ctx = build_context(AGENT, NEW, [big], 100)
    assert ctx.dropped_facts == 1


def test_system_extra_follows_the_facts_and_counts():
    msg = IncomingMessage("test", "alice", "hi", system_extra="Answer in French.")
    ctx = build_context(AGENT, msg, [fact("f", 1.0)], 4000)
    assert ctx.system.endswith("- f\n\nAnswer in French.")


def test_turn_chars_counts_tool_calls_as_json():
    t = turn(1, tool=True).turn
    assert turn_chars(t) == len("user 1 ") + len("echo") + len('{"text": "' + "x" * 20 + '"}') + 20 + len("reply 1")
