"""The LoCoMo measure's scoring (benches/locomo_measure.py) on tiny synthetic data."""

from __future__ import annotations

import math

import pytest

from benches import locomo_measure as lm
from benches.bench_locomo import memory_settings, memory_table, session_time
from tests.fakes.conversation import request_text
from exoclaw_hooks import LLMRequest, Message, ToolResult


def test_content_words_drop_nltk_stop_words_and_punctuation():
    assert lm.content_words("I went to the LGBTQ support group, didn't I?") == {"went", "lgbtq", "support", "group"}
    assert lm.tokens("Café 2023!") == ["caf", "2023"]  # [a-z0-9]+ only, as the measure says
    assert lm.content_words("") == set()
    assert len(lm.NLTK_STOP_WORDS) == 179


@pytest.mark.parametrize(
    "raw, expected",
    [
        (["D1:3"], ["D1:3"]),
        (["D8:6; D9:17"], ["D8:6", "D9:17"]),
        (["D:11:26"], ["D11:26"]),
        (["D30:05"], ["D30:5"]),
        (["D2:1", "D2:01", "D2:1"], ["D2:1"]),
        ([], []),
    ],
)
def test_irregular_evidence_ids_are_normalised(raw, expected):
    assert lm.normalise_evidence(raw) == expected


def test_present_at_seventy_percent_of_content_words():
    utterance = "alpha beta gamma delta epsilon zeta eta theta iota kappa"  # 10 content words
    seven = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}
    assert lm.present(utterance, seven)
    assert not lm.present(utterance, seven - {"eta"})
    assert lm.present("and the of", set())  # nothing to miss


def test_the_questions_own_words_do_not_count():
    question = "Where did Ana adopt the puppy?"
    evidence = ["Ana: we adopted a puppy from the shelter"]
    assert not lm.is_hit(f"{question}\nsomething else entirely", question, evidence)
    assert lm.is_hit(f"[1 May] Ana: we adopted a puppy from the shelter\n{question}", question, evidence)
    # every evidence utterance must be there
    assert not lm.is_hit("Ana: we adopted a puppy from the shelter", question, [*evidence, "Bo: the vet said hello"])


def test_score_sizes_the_context_without_the_question():
    q = lm.Question("What colour is the car?", "red", ("D1:1",), 4)
    ctx = "x" * 400 + "\nWhat colour is the car?"
    result = lm.score(ctx, q, {"D1:1": "my car is red"})
    assert result.tokens == pytest.approx((400 + 2) / 4)  # the question replaced by one space
    assert not result.hit and not result.strict
    result = lm.score("my car is red\nWhat colour is the car?", q, {"D1:1": "my car is red"})
    assert result.hit and result.strict


def test_summaries_per_category_with_median_and_p95():
    results = [lm.Result(1, True, 100), lm.Result(1, False, 300), lm.Result(4, True, 200)]
    table = lm.by_category(results)
    assert list(table) == ["multi-hop", "single-hop", "overall"]
    assert table["multi-hop"].recall == 0.5 and table["multi-hop"].median_tokens == 200
    assert table["overall"].n == 3 and table["overall"].recall == pytest.approx(2 / 3)
    assert lm.percentile(list(range(1, 101)), 95) == 95
    assert lm.percentile([], 95) == 0.0


def test_bm25_matches_a_hand_computation():
    docs = [["cat", "sat"], ["dog", "ran", "far"], ["cat", "cat", "dog"]]
    bm = lm.BM25(docs)
    avg = 8 / 3
    idf_cat = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def term(f, length):
        return idf_cat * f * 2.5 / (f + 1.5 * (1 - 0.75 + 0.75 * length / avg))

    scores = bm.scores(["cat"])
    assert scores[0] == pytest.approx(term(1, 2))
    assert scores[1] == 0
    assert scores[2] == pytest.approx(term(2, 3))
    assert bm.ranked(["cat"]) == ([0, 2] if scores[0] > scores[2] else [2, 0])
    assert bm.ranked(["unknown"]) == []


def test_fill_skips_a_line_that_does_not_fit_and_keeps_going():
    lines = ["a" * 39, "b" * 399, "c" * 39]  # 10, 100 and 10 tokens with their newline
    assert lm.fill(lines, [0, 1, 2], 25) == [0, 2]
    assert lm.fill(lines, [1, 0, 2], 110) == [1, 0]
    assert lm.render(lines, [2, 0]) == lines[0] + "\n" + lines[2]


SAMPLE = {
    "sample_id": "conv-x",
    "conversation": {
        "speaker_a": "Ana",
        "speaker_b": "Bo",
        "session_2_date_time": "9:00 am on 2 June, 2023",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit."},
            {"speaker": "Bo", "dia_id": "D1:2", "text": "Look at this!", "img_url": ["x"],
             "blip_caption": "a photo of a red bike"},
        ],
        "session_2": [{"speaker": "Ana", "dia_id": "D2:1", "text": "Biscuit chewed my shoes today."}],
    },
    "qa": [
        {"question": "What is Ana's puppy called?", "answer": "Biscuit", "evidence": ["D1:1"], "category": 4},
        {"question": "What did Biscuit chew?", "answer": "shoes", "evidence": ["D2:01"], "category": 1},
        {"question": "Is Bo kind?", "answer": "yes", "evidence": [], "category": 3},
        {"question": "Adversarial?", "adversarial_answer": "x", "evidence": ["D1:1"], "category": 5},
    ],
}


def test_a_sample_parses_in_session_order_with_captions_kept_apart():
    conv = lm.parse_sample(SAMPLE)
    assert [u.dia_id for u in conv.utterances] == ["D1:1", "D1:2", "D2:1"]
    assert conv.utterances[1].caption == "a photo of a red bike"
    assert conv.utterances[0].line() == "[1:56 pm on 8 May, 2023] Ana: I adopted a puppy named Biscuit."
    assert conv.utterances[1].line(caption=True).endswith("Look at this! [shares a photo: a photo of a red bike]")
    assert [q.category for q in conv.questions] == [4, 1, 3]  # category 5 is not scored
    assert conv.questions[1].evidence == ("D2:1",)
    assert [q.question for q in conv.scored()] == ["What is Ana's puppy called?", "What did Biscuit chew?"]


def test_baselines_on_a_tiny_conversation():
    conv = lm.parse_sample(SAMPLE)
    texts = {u.dia_id: u.text for u in conv.utterances}
    contexts = lm.baseline_contexts(conv, budget=20, top_k=1)
    assert set(contexts) == {"last-4K", "bm25-top5", "bm25-4K", "full"}
    puppy, chew = conv.scored()
    assert "Biscuit chewed" in contexts["bm25-top5"][1]
    assert lm.score(contexts["bm25-top5"][1], chew, texts).hit
    assert contexts["full"][0].count("\n") == 2
    assert contexts["last-4K"][0] == conv.utterances[2].line()  # 20 tokens hold the last line only


def test_bench_helpers():
    assert session_time("1:56 pm on 8 May, 2023").isoformat() == "2023-05-08T13:56:00+00:00"
    assert session_time("12:09 am on 13 September, 2023").hour == 0
    table = memory_table(["context_tokens=3000", "semantic_enabled=false", 'shares={"recall": 0.7}', "x=rules"])
    assert table == {"context_tokens": 3000, "semantic_enabled": False, "shares": {"recall": 0.7}, "x": "rules"}
    memory = memory_settings({"context_tokens": 3000})
    assert getattr(memory, "context_tokens", None) == 3000 or memory == {"extractor": "rules", "context_tokens": 3000}
    assert memory_settings({}) is None
    with pytest.raises(SystemExit):
        memory_table(["no equals sign"])
    request = LLMRequest("m", "SYSTEM", (Message("user", "hi"), Message("tool", tool_results=(ToolResult("t", "R"),))))
    assert request_text(request) == "SYSTEM\nhi\nR"
