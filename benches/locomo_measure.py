"""The LoCoMo evidence-recall measure (``../shared/locomo-dev/README.md``), as plain functions.

Used by ``benches/bench_locomo.py`` (which feeds the conversations to a real
gateway) and unit-tested on synthetic data in ``tests/benches``. Nothing here
talks to a gateway.

* **Content words**: lower-cased ``[a-z0-9]+`` tokens without NLTK's English
  stop words (the fixed public list, embedded: no nltk dependency).
* **Evidence present**: at least 70 % of an evidence utterance's distinct
  content words occur in the context (the question's own text removed
  first); a question is a hit when every evidence utterance is present.
* **Context size**: characters / 4.
* **Baselines** on the same questions: the last utterances filling a budget,
  BM25 (k1 1.5, b 0.75) over all earlier utterances (top-k, or filling a
  budget), the full history.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

#: NLTK's English stop-word list (``nltk.corpus.stopwords.words("english")``, 179 words).
NLTK_STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he
    him his himself she she's her hers herself it it's its itself they them their theirs themselves what which
    who whom this that that'll these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own same so than
    too very s t can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't
    didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't
    needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()
)

THRESHOLD = 0.70
CHARS_PER_TOKEN = 4
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-cased ``[a-z0-9]+`` tokens."""
    return _TOKEN.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The distinct tokens of ``text`` that are not NLTK stop words."""
    return {t for t in tokens(text) if t not in NLTK_STOP_WORDS}


def size_tokens(text: str) -> float:
    """Context size as the measure counts it: characters / 4."""
    return len(text) / CHARS_PER_TOKEN


# ---------------------------------------------------------------- evidence ids

_EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")


def normalise_evidence(ids: Iterable[str]) -> list[str]:
    """``["D8:6; D9:17", "D:11:26", "D30:05"]`` → ``["D8:6", "D9:17", "D11:26", "D30:5"]`` (order kept, no repeats)."""
    out: dict[str, None] = {}
    for raw in ids:
        for session, turn in _EVIDENCE.findall(str(raw)):
            out.setdefault(f"D{int(session)}:{int(turn)}", None)
    return list(out)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Utterance:
    dia_id: str
    session: int
    date_time: str
    speaker: str
    text: str
    caption: str = ""

    def line(self, *, caption: bool = False) -> str:
        """``[<session date_time>] <speaker>: <text>`` — how a group-chat channel delivers it."""
        text = self.text
        if caption and self.caption:
            text = f"{text} [shares a photo: {self.caption}]"
        return f"[{self.date_time}] {self.speaker}: {text}"


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    utterances: list[Utterance] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def by_id(self) -> dict[str, Utterance]:
        return {u.dia_id: u for u in self.utterances}

    def scored(self) -> list[Question]:
        """The questions that can be scored: those with evidence (2 of the dev split's 385 have none)."""
        return [q for q in self.questions if q.evidence]


def _session_number(key: str) -> int:
    return int(key.split("_")[1])


def parse_sample(sample: dict) -> Conversation:
    """One LoCoMo sample: its sessions in order, its questions of categories 1-4 (evidence normalised)."""
    conv = sample["conversation"]
    out = Conversation(sample["sample_id"], (conv.get("speaker_a", ""), conv.get("speaker_b", "")))
    keys = sorted(
        (k for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)), key=_session_number
    )
    for key in keys:
        n = _session_number(key)
        when = conv.get(f"{key}_date_time", "")
        for u in conv[key]:
            (dia_id,) = normalise_evidence([u["dia_id"]]) or [u["dia_id"]]
            out.utterances.append(
                Utterance(dia_id, n, when, u["speaker"], u.get("text", ""), u.get("blip_caption") or "")
            )
    for q in sample.get("qa", ()):
        if q.get("category") not in CATEGORIES:
            continue
        out.questions.append(
            Question(q["question"], str(q.get("answer", "")), tuple(normalise_evidence(q.get("evidence", ()))),
                     int(q["category"]))
        )
    return out


def load(path: str | Path) -> list[Conversation]:
    with open(path, encoding="utf-8") as f:
        return [parse_sample(s) for s in json.load(f)]


# ---------------------------------------------------------------- scoring


def without(context: str, question: str) -> str:
    """The context with every occurrence of the question's own text removed."""
    return context.replace(question, " ") if question else context


def present(utterance: str, context_words: set[str], threshold: float = THRESHOLD) -> bool:
    """Whether ≥ ``threshold`` of ``utterance``'s content words occur in ``context_words``.

    An utterance without content words is present (nothing of it can be missing).
    """
    words = content_words(utterance)
    if not words:
        return True
    return len(words & context_words) >= threshold * len(words)


def is_hit(context: str, question: str, evidence: Sequence[str], threshold: float = THRESHOLD) -> bool:
    """All evidence utterances (their texts) are present in ``context`` once ``question`` is removed."""
    words = content_words(without(context, question))
    return all(present(e, words, threshold) for e in evidence)


def is_verbatim_hit(context: str, question: str, evidence: Sequence[str]) -> bool:
    """The strict variant: every evidence utterance's text occurs verbatim."""
    ctx = without(context, question)
    return all(e in ctx for e in evidence)


@dataclass
class Result:
    category: int
    hit: bool
    tokens: float
    strict: bool = False


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), nearest-rank on sorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass(frozen=True)
class Summary:
    n: int
    recall: float  # share of hits, 0-1
    strict: float
    median_tokens: float
    p95_tokens: float


def summarise(results: Sequence[Result]) -> Summary:
    if not results:
        return Summary(0, 0.0, 0.0, 0.0, 0.0)
    sizes = [r.tokens for r in results]
    return Summary(
        len(results),
        sum(r.hit for r in results) / len(results),
        sum(r.strict for r in results) / len(results),
        statistics.median(sizes),
        percentile(sizes, 95),
    )


def by_category(results: Sequence[Result]) -> dict[str, Summary]:
    """``{"multi-hop": …, …, "overall": …}`` (categories with no question left out)."""
    out: dict[str, Summary] = {}
    for cat, name in CATEGORIES.items():
        mine = [r for r in results if r.category == cat]
        if mine:
            out[name] = summarise(mine)
    out["overall"] = summarise(results)
    return out


def score(context: str, question: Question, texts: dict[str, str]) -> Result:
    """Score one captured context for ``question``; ``texts`` maps a dia_id to its utterance text.

    The size is that of the context without the question's own text.
    """
    evidence = [texts[e] for e in question.evidence if e in texts]
    rest = without(context, question.question)
    return Result(
        question.category,
        is_hit(rest, "", evidence),
        size_tokens(rest),
        is_verbatim_hit(rest, "", evidence),
    )


# ---------------------------------------------------------------- BM25 and the baselines


class BM25:
    """Okapi BM25 over documents given as token lists (idf ``log(1 + (N - n + .5) / (n + .5))``)."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tf = [Counter(d) for d in docs]
        self.len = [len(d) for d in docs]
        self.avg = (sum(self.len) / len(docs)) if docs else 0.0
        df: Counter[str] = Counter()
        for tf in self.tf:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}

    def scores(self, query: Iterable[str]) -> list[float]:
        terms = [t for t in set(query) if t in self.idf]
        out = []
        for tf, length in zip(self.tf, self.len):
            s = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg or 1))
            for t in terms:
                f = tf.get(t)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    def ranked(self, query: Iterable[str]) -> list[int]:
        """Document indexes by descending score (ties: earlier first); documents scoring 0 left out."""
        s = self.scores(query)
        return [i for i in sorted(range(len(s)), key=lambda i: (-s[i], i)) if s[i] > 0]


def fill(lines: Sequence[str], order: Iterable[int], budget_tokens: float) -> list[int]:
    """Indexes of ``lines`` taken in ``order`` while they fit the budget; one that does not fit is skipped
    (a shorter one later in the order may still fit). Each line costs its characters + a newline, / 4."""
    used = 0.0
    taken: list[int] = []
    for i in order:
        cost = size_tokens(lines[i] + "\n")
        if used + cost > budget_tokens:
            continue
        taken.append(i)
        used += cost
    return taken


def render(lines: Sequence[str], indexes: Iterable[int]) -> str:
    """A baseline context: the chosen lines in conversation order (the question is not part of it)."""
    return "\n".join(lines[i] for i in sorted(indexes))


def baseline_contexts(conv: Conversation, budget: float = 4000, top_k: int = 5) -> dict[str, list[str]]:
    """For each scored question of ``conv``: the context of each baseline (name → one context per question).

    Utterances are lines ``[<date_time>] <speaker>: <text>``; BM25 indexes each
    line's content words and is queried with the question's content words.
    These choices reproduce the figures of ``locomo-dev/README.md``.
    """
    lines = [u.line() for u in conv.utterances]
    bm25 = BM25([[t for t in tokens(line) if t not in NLTK_STOP_WORDS] for line in lines])
    out: dict[str, list[str]] = {"last-4K": [], "bm25-top5": [], "bm25-4K": [], "full": []}
    everything = range(len(lines))
    for q in conv.scored():
        ranked = bm25.ranked(content_words(q.question))
        out["last-4K"].append(render(lines, fill(lines, reversed(everything), budget)))
        out["bm25-top5"].append(render(lines, ranked[:top_k]))
        out["bm25-4K"].append(render(lines, fill(lines, ranked, budget)))
        out["full"].append(render(lines, everything))
    return out
