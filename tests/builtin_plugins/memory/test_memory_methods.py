"""memory.list / memory.forget: a person sees what is remembered and retires a fact; history is kept."""

from __future__ import annotations

from tests.builtin_plugins.memory.memory_helpers import SESSION, Recorder, chat, memory_settings
from tests.harness import running_gateway


async def test_list_then_forget_supersedes_and_keeps_the_history(tmp_path):
    recorder = Recorder()
    async with running_gateway(memory_settings(tmp_path), plugins=[("recorder", recorder)]) as gw:
        async with gw.client() as c:
            await c.chat(chat("my dog's name is Luna"))
            await c.chat(chat("I live in Paris"))
            listed = (await c.request("memory.list", {"session": SESSION}))["result"]
            luna = next(f for f in listed if f["object"] == "Luna")
            forgot = await c.request("memory.forget", {"session": SESSION, "id": luna["id"]})
            after = (await c.request("memory.list", {"session": SESSION}))["result"]
            history = (await c.request("memory.list", {"session": SESSION, "include_superseded": True}))["result"]
            await c.chat(chat("what's my dog's name?"))
            again = await c.request("memory.forget", {"session": SESSION, "id": luna["id"]})
            other = await c.request("memory.list", {"session": "default:test:bob:main"})
    assert {f["object"] for f in listed} == {"Luna", "Paris"}
    assert forgot["result"]["superseded_at"] is not None and forgot["result"]["text"] == "the user's dog's name is Luna"
    assert [f["object"] for f in after] == ["Paris"]
    assert {f["object"] for f in history} == {"Luna", "Paris"}  # forgotten is not deleted
    assert "Luna" not in recorder.requests[-1].system  # and no longer reaches the model
    assert again["error"] == f"invalid params: id: no remembered fact {luna['id']} for this person"
    assert other["result"] == []  # each person's memory is their own


async def test_bad_params_are_clear_errors(tmp_path):
    async with running_gateway(memory_settings(tmp_path)) as gw:
        async with gw.client() as c:
            assert (await c.request("memory.list", {}))["error"].startswith("invalid params: session: required")
            assert (await c.request("memory.list", {"session": "nope"}))["error"] == (
                "invalid params: session: must be a session key agent:channel:account:peer")
            assert (await c.request("memory.forget", {"session": SESSION, "id": "7"}))["error"].startswith(
                "invalid params: id: must be the integer id")
            bob = "default:test:bob:main"
            await c.chat(chat("my cat is called Tom", account="bob"))
            tom = (await c.request("memory.list", {"session": bob}))["result"][0]
            stolen = await c.request("memory.forget", {"session": SESSION, "id": tom["id"]})
    assert stolen["error"].startswith("invalid params: id: no remembered fact")  # not alice's to forget
