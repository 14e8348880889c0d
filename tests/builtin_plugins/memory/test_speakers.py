"""Speaker and label prefixes (builtin_plugins/memory/speakers.py)."""

from __future__ import annotations

import pytest

from builtin_plugins.memory.speakers import split_prefix


@pytest.mark.parametrize(
    "text, speaker, rest",
    [
        ("Caroline: I went to a support group", "Caroline", "I went to a support group"),
        ("[1:56 pm on 8 May, 2023] Caroline: I went", "Caroline", "I went"),
        ("[2023-05-08 13:56] Dr. Ana Gomez: hi", "Dr. Ana Gomez", "hi"),
        ("turn 5: remember that my dog's name is Luna", None, "remember that my dog's name is Luna"),
        ("Turn 12: hello", None, "hello"),
        ("msg #3: hello", None, "hello"),
        ("Note: I moved", None, "I moved"),
        ("PS: I moved", None, "I moved"),
        ("me: I moved", None, "I moved"),
        ("[10:32] turn 4: Ana: hi", "Ana", "hi"),
    ],
)
def test_prefixes_are_peeled_and_say_who_speaks(text, speaker, rest):
    assert split_prefix(text) == (speaker, rest)


@pytest.mark.parametrize(
    "text",
    ["My favourite foods: pizza and sushi", "See https://example.com: it works", "Meet at 10:30 tomorrow",
     "Good news: I got the job", "The plan: leave at six", "I said: no", "[x] done: yes", "Caroline:",
     "Assistant: I can help", "just a sentence"],
)
def test_what_is_not_a_speaker_or_a_label_is_left_alone(text):
    speaker, rest = split_prefix(text)
    assert speaker is None
    assert rest == text
