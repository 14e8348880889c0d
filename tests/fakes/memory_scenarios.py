"""Generated memory scenarios for what the LoCoMo split lacks (issue 15).

Each :class:`Scenario` is a conversation (a person's turns, maybe with the
time each was said) and :class:`Probe` s asked after it. A probe is answered
when every ``expect`` string is in the context the model receives for it
(the question's own text removed), and no ``stale`` string is stated there
as a current fact ("What you remember …" section).

* :func:`everyday_facts` — 20 facts of everyday life, each in its own
  phrasing, buried in unrelated small talk, then asked in other words.
* :func:`turn_five` — "turn 5: remember that my dog's name is Luna", asked
  at turn 50, every turn numbered the way a log would.
* :func:`changing_facts` — facts that change over weeks (a move, a new job,
  a new pet's name); the question asks for the current one.
* :func:`corrections` — the person corrects what they said.
* :func:`group_chat` — several people in one channel, ``Name: …``.

The filler is generic and seeded: everything is deterministic.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field

from .conversation import Said

@dataclass(frozen=True)
class Probe:
    question: str
    #: each must be in the context; ``"gluten|coeliac"``: either will do
    expect: tuple[str, ...]
    #: a value that was true once and is not any more: it must not be stated as a current fact
    stale: tuple[str, ...] = ()


@dataclass
class Scenario:
    name: str
    turns: list[Said] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)


START = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.timezone.utc)

FILLER = [
    "What's a quick breakfast I can make in five minutes?",
    "Tell me a fun fact about octopuses.",
    "How long should I boil an egg for a runny yolk?",
    "Can you suggest a name for a book club?",
    "What's the difference between a latte and a flat white?",
    "Give me three ideas for a rainy afternoon.",
    "How do I get rid of fruit flies in the kitchen?",
    "What's a polite way to decline a meeting invite?",
    "Summarise the plot of Hamlet in two sentences.",
    "Is it better to stretch before or after running?",
    "Recommend a podcast about history.",
    "How many cups are in a litre?",
    "What should I pack for a weekend hike?",
    "Write a haiku about autumn leaves.",
    "Why is the sky blue?",
    "How do I remove a red wine stain from a carpet?",
    "What's a good stretch for a stiff neck?",
    "Explain compound interest like I'm twelve.",
    "Suggest a board game for four players.",
    "What's the capital of Australia?",
    "How often should I water a cactus?",
    "Give me a tongue twister.",
    "What's the best way to learn to touch type?",
    "Any tips for falling asleep faster?",
    "How do I make cold brew coffee at home?",
    "What's a good warm-up before lifting weights?",
    "Translate 'good morning' into Italian.",
    "How do you say thank you in Japanese?",
    "What are some easy houseplants for a dark flat?",
    "Tell me a joke about penguins.",
    "How do I clean a cast iron pan?",
    "What's the tallest mountain in Africa?",
    "Give me a mnemonic for the planets.",
    "How many minutes to roast broccoli?",
    "What's a nice gesture for a friend who is moving house?",
    "How do I politely remind someone they owe me money?",
    "What should I read after The Hobbit?",
    "What's the rule of thirds in photography?",
    "How do I keep basil alive?",
    "Suggest a playlist theme for a long drive.",
]


def _filler(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(FILLER) for _ in range(n)]


def _timed(contents: list[str], start: dt.datetime = START, step: dt.timedelta = dt.timedelta(hours=5)) -> list[Said]:
    return [Said(c, start + i * step) for i, c in enumerate(contents)]


#: (what the person says, how they ask later, what the answer must contain)
EVERYDAY: list[tuple[str, str, tuple[str, ...]]] = [
    ("btw my dog is called Luna, she's a border collie", "What's my dog's name again?", ("Luna",)),
    ("I work as a physiotherapist at a sports clinic", "What do I do for a living?", ("physiotherapist",)),
    ("Just so you know, I'm allergic to penicillin.", "Which medicine should doctors avoid giving me?",
     ("penicillin",)),
    ("My sister Ana lives in Porto with her two boys.", "Where does my sister live?", ("Porto",)),
    ("My wife's birthday is on 14 February.", "When is my wife's birthday?", ("14 February",)),
    ("I drive an old blue Subaru Outback.", "What car do I drive?", ("Subaru",)),
    ("Leo, my son, turned seven last week!", "How old is my son?", ("seven",)),
    ("We're vegetarian at home, no meat at all.", "Suggest a dinner that fits our diet.", ("vegetarian",)),
    ("I've been learning Portuguese on the train every morning.", "Which language am I learning?",
     ("Portuguese",)),
    ("Radiohead is my all-time favourite band.", "Who is my favourite band?", ("Radiohead",)),
    ("I grew up in Cork, in the south of Ireland.", "Where did I grow up?", ("Cork",)),
    ("My flight to Lisbon leaves on June 3rd at 7am.", "When does my flight to Lisbon leave?", ("June 3rd",)),
    ("My manager is called Priya and she's great.", "What's my manager's name?", ("Priya",)),
    ("I'm training for the Berlin marathon in September.", "Which marathon am I training for?", ("Berlin",)),
    ("I can't eat gluten, I'm coeliac.", "Can I have regular pasta? Remember my condition.", ("gluten|coeliac",)),
    ("I take my coffee black with no sugar.", "How do I like my coffee?", ("black",)),
    ("Our cat Miso knocks everything off the shelves.", "What's the name of our cat?", ("Miso",)),
    ("I parked on level 3 of the station garage, spot 42.", "Where did I park the car?", ("spot 42",)),
    ("Our wedding anniversary is September 12.", "When is our anniversary?", ("September 12",)),
    ("I play the cello in a community orchestra on Thursdays.", "What instrument do I play?", ("cello",)),
]


def everyday_facts(seed: int = 15, filler_between: int = 12) -> Scenario:
    """20 facts, each followed by ``filler_between`` unrelated turns, then the 20 questions."""
    rng = random.Random(seed)
    contents: list[str] = _filler(rng, 5)
    for statement, _q, _a in EVERYDAY:
        contents.append(statement)
        contents += _filler(rng, filler_between)
    return Scenario(
        "everyday facts (20, buried)",
        _timed(contents, step=dt.timedelta(hours=2)),
        [Probe(q, a) for _s, q, a in EVERYDAY],
    )


def turn_five(turns: int = 50, seed: int = 5) -> Scenario:
    """Numbered turns; turn 5 holds the fact, turn ``turns`` asks for it."""
    rng = random.Random(seed)
    contents = []
    for n in range(1, turns):
        text = "remember that my dog's name is Luna" if n == 5 else rng.choice(FILLER)
        contents.append(f"turn {n}: {text}")
    return Scenario("turn-5 fact at turn 50", _timed(contents, step=dt.timedelta(minutes=3)),
                    [Probe(f"turn {turns}: what's my dog's name?", ("Luna",))])


def changing_facts(seed: int = 7) -> Scenario:
    """A move, a job change and a renamed plan, weeks apart; the questions ask for what holds now."""
    rng = random.Random(seed)
    contents = ["I live in Paris, in the 11th."] + _filler(rng, 15)
    contents += ["I work at a bakery downtown."] + _filler(rng, 15)
    contents += ["Big news: we just moved to Berlin!"] + _filler(rng, 15)
    contents += ["I started a new job at Siemens this week."] + _filler(rng, 10)
    return Scenario(
        "facts that change",
        _timed(contents, step=dt.timedelta(days=1)),
        [Probe("Where do I live now?", ("Berlin",), stale=("lives in Paris",)),
         Probe("Where do I work these days?", ("Siemens",))],
    )


def corrections(seed: int = 9) -> Scenario:
    rng = random.Random(seed)
    contents = ["My dog's name is Lina."] + ["Sorry, I meant Lena!"] + _filler(rng, 20)
    contents += ["I'm 34 years old."] + _filler(rng, 3) + ["Oops, make that 35."] + _filler(rng, 20)
    return Scenario(
        "corrections",
        _timed(contents, step=dt.timedelta(hours=1)),
        [Probe("What's my dog called?", ("Lena",), stale=("name is Lina",)),
         Probe("How old am I?", ("35",), stale=("is 34 years old",))],
    )


def group_chat(seed: int = 11) -> Scenario:
    """Three people in one channel, each turn ``Name: …``."""
    rng = random.Random(seed)
    lines = [
        "Ana: I just adopted a cat called Pixel!",
        "Bo: Nice! My cat is called Mochi, she's 3.",
        "Cy: I'm allergic to cats, sadly.",
        "Ana: I work as a nurse at the children's hospital.",
        "Bo: I'm a carpenter, mostly kitchens.",
        "Cy: I moved to Lisbon last month.",
    ]
    contents = []
    for line in lines:
        contents.append(line)
        who = rng.choice(["Ana", "Bo", "Cy"])
        contents += [f"{who}: {f}" for f in _filler(rng, 6)]
    return Scenario(
        "several people in one channel",
        _timed(contents, step=dt.timedelta(minutes=20)),
        [Probe("What's Ana's cat called?", ("Pixel",)), Probe("What is Bo's job?", ("carpenter",)),
         Probe("Who is allergic to cats?", ("Cy",)), Probe("Where does Cy live now?", ("Lisbon",))],
    )


def all_scenarios() -> list[Scenario]:
    return [everyday_facts(), turn_five(), changing_facts(), corrections(), group_chat()]


FACTS_SECTION = "What you remember about"


def facts_section(context: str) -> str:
    """The part of a context that states remembered facts (empty if none)."""
    start = context.find(FACTS_SECTION)
    if start < 0:
        return ""
    end = context.find("\n\n", start)
    return context[start:] if end < 0 else context[start:end]


def answered(context: str, probe: Probe) -> bool:
    """Every expected string is in the context (the question removed) and no stale one is a current fact."""
    rest = context.replace(probe.question, " ")
    for expected in probe.expect:
        if not any(re.search(rf"\b{re.escape(e)}\b", rest, re.IGNORECASE) for e in expected.split("|")):
            return False
    facts = facts_section(rest).lower()
    return not any(s.lower() in facts for s in probe.stale)
