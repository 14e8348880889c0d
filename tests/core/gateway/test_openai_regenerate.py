"""A chat UI's "regenerate" through the official ``openai`` client: one question, one answer stored.

The echo provider's note counts the messages it was sent, so the tests also
see whether the replaced answer reached the model.
"""

from __future__ import annotations

import re

import openai

from exoclaw_hooks import ProviderError
from exoclaw_hooks.testing import Script, ScriptedProvider
from tests.core.gateway.test_openai_api import Scripted, client, history
from tests.harness import make_settings, running_gateway

SESSION = "default:openai:ui:main"


def sent_messages(reply: str) -> int:
    """How many messages the echo provider was sent (from its note)."""
    return int(re.search(r"\[echo: (\d+) messages?", reply).group(1))


async def ask(oa: openai.AsyncOpenAI, messages: list[dict], stream: bool = False) -> str:
    if stream:
        chunks = await oa.chat.completions.create(model="exoclaw", messages=messages, user="ui", stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    done = await oa.chat.completions.create(model="exoclaw", messages=messages, user="ui")
    return done.choices[0].message.content


def pairs(stored: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"].split("\n\n[echo")[0]) for m in stored]


async def test_regenerate_replaces_the_last_answer(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            q1 = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "first question"}]
            a1 = await ask(oa, q1)
            q2 = [*q1, {"role": "assistant", "content": a1}, {"role": "user", "content": "second question"}]
            a2 = await ask(oa, q2)
            # the UI's "regenerate": the same request again, streamed this time
            a2_again = await ask(oa, q2, stream=True)
            assert a2_again.startswith("You said: second question")
            assert sent_messages(a2_again) == sent_messages(a2) == 3  # the replaced answer was not shown to the model
            stored = await history(gw, SESSION)
            assert pairs(stored) == [("user", "first question"), ("assistant", "You said: first question"),
                                     ("user", "second question"), ("assistant", "You said: second question")]
            assert [m["turn"] for m in stored] == [1, 1, 2, 2]
            sessions = await gw.rt.store.list_sessions()
            assert sessions[0].message_count == 4


async def test_the_same_question_asked_again_after_its_answer_is_a_new_turn(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            q = [{"role": "user", "content": "tell me a joke"}]
            a = await ask(oa, q)
            again = [*q, {"role": "assistant", "content": a}, {"role": "user", "content": "tell me a joke"}]
            b = await ask(oa, again)
            assert sent_messages(b) == 3  # it saw the first exchange
            assert [m["role"] for m in await history(gw, SESSION)] == ["user", "assistant", "user", "assistant"]


async def test_a_different_question_is_never_a_regenerate(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with client(gw) as oa:
            await ask(oa, [{"role": "user", "content": "one"}])
            await ask(oa, [{"role": "user", "content": "two"}])
            assert [c for r, c in pairs(await history(gw, SESSION)) if r == "user"] == ["one", "two"]


async def test_a_regenerate_that_fails_keeps_the_old_answer(tmp_path):
    provider = ScriptedProvider()
    provider.enqueue(Script(text=["the first answer"]), *[Script(error=ProviderError("overloaded"))] * 5)
    settings = make_settings(data_dir=tmp_path, provider="scripted", model="m")
    async with running_gateway(settings, plugins=[("s", Scripted(provider))]) as gw:
        async with client(gw) as oa:
            q = [{"role": "user", "content": "question"}]
            assert await ask(oa, q) == "the first answer"
            try:
                await ask(oa, q)
                raise AssertionError("the regenerate should have failed")
            except openai.APIStatusError as exc:
                assert exc.status_code == 502
            assert pairs(await history(gw, SESSION)) == [("user", "question"), ("assistant", "the first answer")]


async def test_the_websocket_face_never_replaces(tmp_path):
    async with running_gateway(make_settings(data_dir=tmp_path)) as gw:
        async with gw.client() as c:
            for _ in range(2):
                await c.chat({"channel": "t", "account": "a", "content": "same"})
            key = (await c.request("session.list"))["result"][0]["key"]
            stored = (await c.request("chat.history", {"session": key}))["result"]
    assert [m["content"] for m in stored if m["role"] == "user"] == ["same", "same"]
