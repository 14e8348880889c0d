"""The long-conversation memory measure on LoCoMo (``../shared/locomo-dev/README.md``), and its baselines.

For each question (categories 1–4) a *context* is what the model would
receive. A question is a hit when every evidence utterance is present in
its context: at least 70 % of the utterance's content words (lower-cased
``[a-z0-9]+`` tokens, NLTK's English stop words removed) occur in the
context, the question's own text removed first. The context's size is its
characters / 4.

This module knows nothing of the gateway: ``bench_locomo.py`` feeds the
conversations to a real one and hands the captured contexts here; the
baselines (last utterances, BM25, full history) build theirs from the
utterances directly, formatted as the gateway is fed them.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

#: NLTK's English stop-word list (nltk.corpus.stopwords.words("english"), 179 words), as the measure defines it
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
that that'll these those am is are was were be been being have has had having do does did doing a an the and but
if or because as until while of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don don't should
should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't
haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
weren weren't won won't wouldn wouldn't
""".split())
_TOKEN = re.compile(r"[a-z0-9]+")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
#: share of an evidence utterance's content words the context must hold
PRESENT = 0.7


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def content_words(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in STOP_WORDS]


def size_tokens(context: str) -> float:
    return len(context) / 4


@dataclass(frozen=True)
class Utterance:
    dia_id: str
    speaker: str
    text: str
    when: str  # the session's date and time, as the data writes it

    @property
    def line(self) -> str:
        """The utterance as a group chat delivers it (and as the gateway is fed it)."""
        return f"[{self.when}] {self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass
class Conversation:
    sample_id: str
    utterances: list[Utterance]
    questions: list[Question]
    by_id: dict[str, Utterance] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {u.dia_id: u for u in self.utterances}


def data_dir() -> Path | None:
    """``$EXOCLAW_LOCOMO_DIR``, else ``../shared/locomo-dev`` beside the repository (None when absent)."""
    env = os.environ.get("EXOCLAW_LOCOMO_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "locomo-dev"
    return path if (path / "locomo-dev.json").is_file() else None


def normalise_evidence(raw: Iterable[str]) -> tuple[str, ...]:
    """``"D8:6; D9:17"`` → two ids, ``"D:11:26"`` → ``D11:26``, ``"D30:05"`` → ``D30:5``."""
    out: list[str] = []
    for item in raw:
        for part in re.split(r"[;,\s]+", item):
            m = re.fullmatch(r"D:?(\d+):0*(\d+)", part.strip())
            if m:
                out.append(f"D{int(m.group(1))}:{int(m.group(2))}")
    return tuple(dict.fromkeys(out))


def load(path: Path) -> list[Conversation]:
    samples = json.loads((path / "locomo-dev.json").read_text())
    out = []
    for sample in samples:
        conv = sample["conversation"]
        utterances: list[Utterance] = []
        n = 1
        while f"session_{n}" in conv:
            when = conv[f"session_{n}_date_time"]
            for u in conv[f"session_{n}"]:
                # a shared photo's caption is not part of what was said (the held-out harness feeds the text)
                utterances.append(Utterance(u["dia_id"], u["speaker"], u["text"], when))
            n += 1
        questions = [
            Question(q["question"], q["category"], normalise_evidence(q["evidence"]))
            for q in sample["qa"] if q["category"] in CATEGORIES
        ]
        out.append(Conversation(sample["sample_id"], utterances, questions))
    return out


def hit(context: str, question: Question, conversation: Conversation) -> bool:
    """Every evidence utterance is present (≥ 70 % of its content words) in ``context`` minus the question."""
    words = set(tokens(context.replace(question.text, " ")))
    for dia_id in question.evidence:
        utterance = conversation.by_id.get(dia_id)
        if utterance is None:
            continue  # an id the data does not have: not held against anyone
        wanted = content_words(utterance.text)
        if wanted and sum(w in words for w in wanted) / len(wanted) < PRESENT:
            return False
    return True


# ---------------------------------------------------------------- baselines


def last_filling(conversation: Conversation, budget: int) -> str:
    lines: list[str] = []
    used = 0.0
    for u in reversed(conversation.utterances):
        cost = size_tokens(u.line) + 0.25
        if used + cost > budget:
            break
        lines.append(u.line)
        used += cost
    return "\n".join(reversed(lines))


class BM25:
    """Okapi BM25 (k1 1.5, b 0.75) over the utterances' lines."""

    def __init__(self, docs: Sequence[str], k1: float = 1.5, b: float = 0.75):
        self.docs = [Counter(content_words(d)) for d in docs]
        self.lengths = [sum(c.values()) for c in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.docs))
        df: Counter[str] = Counter()
        for c in self.docs:
            df.update(c.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1, self.b = k1, b

    def ranked(self, query: str) -> list[int]:
        q = set(content_words(query))
        scores = []
        for i, (c, length) in enumerate(zip(self.docs, self.lengths)):
            s = 0.0
            for w in q:
                tf = c.get(w)
                if tf:
                    s += self.idf[w] * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.avg))
            if s > 0:
                scores.append((s, i))
        scores.sort(key=lambda p: (-p[0], p[1]))
        return [i for _, i in scores]


def bm25_context(conversation: Conversation, index: BM25, question: Question, *, top: int | None = None,
                 budget: int | None = None) -> str:
    lines: list[str] = []
    used = 0.0
    for i in index.ranked(question.text)[: top or None]:
        line = conversation.utterances[i].line
        cost = size_tokens(line) + 0.25
        if budget is not None and used + cost > budget:
            break
        lines.append(line)
        used += cost
    return "\n".join(lines)


def full_history(conversation: Conversation) -> str:
    return "\n".join(u.line for u in conversation.utterances)


# ---------------------------------------------------------------- scoring


@dataclass
class Scores:
    name: str
    hits: dict[int, list[bool]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    sizes: list[float] = field(default_factory=list)

    def add(self, question: Question, context: str, conversation: Conversation) -> None:
        self.hits[question.category].append(hit(context, question, conversation))
        self.sizes.append(size_tokens(context))

    def rate(self, category: int | None = None) -> float:
        values = [h for c, hs in self.hits.items() if category in (None, c) for h in hs]
        return 100.0 * sum(values) / max(1, len(values))

    def row(self) -> list[str]:
        p95 = sorted(self.sizes)[int(0.95 * (len(self.sizes) - 1))] if self.sizes else 0
        return ([self.name, f"{self.rate():.1f}"] + [f"{self.rate(c):.1f}" for c in CATEGORIES]
                + [f"{statistics.median(self.sizes):,.0f}" if self.sizes else "-", f"{p95:,.0f}"])


def baselines(conversations: list[Conversation], budget: int = 4000) -> list[Scores]:
    last, top5, filled, full = Scores(f"last {budget:,} tokens"), Scores("BM25 top-5"), \
        Scores(f"BM25 filling {budget:,}"), Scores("full history")
    for conv in conversations:
        index = BM25([u.line for u in conv.utterances])
        recent = last_filling(conv, budget)
        everything = full_history(conv)
        for q in conv.questions:
            last.add(q, recent, conv)
            top5.add(q, bm25_context(conv, index, q, top=5), conv)
            filled.add(q, bm25_context(conv, index, q, budget=budget), conv)
            full.add(q, everything, conv)
    return [last, top5, filled, full]


def table(rows: list[Scores], markdown: bool = True) -> str:
    head = ["context", "all %"] + [f"{name} %" for name in CATEGORIES.values()] + ["median tokens", "p95 tokens"]
    lines = [head] + [r.row() for r in rows]
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in lines[1:]]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines)


ContextOf = Callable[[Conversation, Question], str]
