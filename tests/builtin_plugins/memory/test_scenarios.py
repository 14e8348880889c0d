"""Generated memory scenarios through a real gateway (tests/fakes/memory_scenarios.py).

Each scenario is fed to a fresh gateway with the builtin plugins loaded
through their entry points and a SQLite store (tests/fakes/conversation.py);
each question's context — what the model would receive — must hold the
answer and must not state a value that is no longer true as a fact.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tests.fakes.conversation import converse
from tests.fakes.memory_scenarios import (
    Scenario,
    answered,
    changing_facts,
    corrections,
    everyday_facts,
    group_chat,
    turn_five,
)

HAS_RECALL = "memory-recall" in {ep.name for ep in entry_points(group="exoclaw")}


async def _missed(scenario: Scenario) -> tuple[list[str], list[float]]:
    run = await converse(scenario.turns, [p.question for p in scenario.probes])
    missed = [p.question for p, ctx in zip(scenario.probes, run.contexts) if not answered(ctx, p)]
    sizes = [len(ctx.replace(p.question, " ")) / 4 for p, ctx in zip(scenario.probes, run.contexts)]
    return missed, sizes


async def test_the_turn_5_fact_reaches_the_model_at_turn_50():
    missed, _ = await _missed(turn_five())
    assert missed == []


async def test_a_corrected_fact_is_the_one_the_model_gets():
    missed, _ = await _missed(corrections())
    assert missed == []


async def test_a_fact_that_changed_is_given_as_it_is_now():
    missed, _ = await _missed(changing_facts())
    assert missed == []


async def test_in_a_group_chat_each_persons_facts_stay_theirs():
    missed, _ = await _missed(group_chat())
    assert missed == []


@pytest.mark.skipif(not HAS_RECALL, reason="needs the memory-recall plugin (recall over everything said)")
async def test_twenty_everyday_facts_buried_in_small_talk_all_reach_the_model_under_5k_tokens():
    missed, sizes = await _missed(everyday_facts())
    assert missed == []
    assert max(sizes) < 5000


def test_the_scenarios_check_what_they_claim():
    """The checker itself: an answer must be there, and a stale value must not be stated as a fact."""
    probe = corrections().probes[0]
    assert answered("... Lena ...", probe)
    assert not answered("... Lina ...", probe)
    assert not answered("What you remember about the person:\n- the user's dog's name is Lina\n\nLena", probe)
    assert answered("What you remember about the person:\n- the user's dog's name is Lena", probe)
    alt = everyday_facts().probes[14]
    assert answered("the user is coeliac", alt) and not answered("nothing", alt)
