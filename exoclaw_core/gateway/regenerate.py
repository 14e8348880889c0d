"""A chat UI's "regenerate" on the OpenAI face: a new answer replaces the old one, it is not a new turn.

Exoclaw keeps the conversation, so a UI that resends its history only adds
its last user message. When the user clicks "regenerate", the UI sends the
same history again, ending with the same user message — without the answer
it is regenerating. Stored as an ordinary turn, the session would hold the
question twice and both answers, and the model would see the rejected
answer.

The rule: the request is a regenerate when its last user message is the same
text as the user message of the session's last stored turn, and the request
does not carry that turn's answer right before it (a client that shows the
answer and asks the same thing again sends it: that is a new turn). The new
turn then runs without the old one in its context and replaces it when it is
stored — one question, one answer. If the new turn fails, the old one stays.
A client that sends only the last message (no history) and repeats it is
treated as regenerating, too: it never saw the answer in its own messages.
"""

from __future__ import annotations

from typing import Any

from exoclaw_hooks import Route


def _reply_of(turn: Any) -> str:
    """What a client showed as the turn's answer: the assistant texts of the turn, joined."""
    return "".join(m.content or "" for m in turn.messages if m.role == "assistant")


def _question_of(turn: Any) -> str | None:
    return next((m.content for m in turn.messages if m.role == "user"), None)


async def regenerated_turn(rt: Any, route: Route, content: str, previous_reply: str | None) -> int | None:
    """The seq of the session's last turn when this request regenerates its answer, else None."""
    last = await rt.store.load_turns(route.session_key, 1)
    if not last or _question_of(last[-1]) != content:
        return None
    if previous_reply is not None and previous_reply.strip() == _reply_of(last[-1]).strip():
        return None  # the client has the answer: the same question asked again
    return last[-1].seq
