"""Rules about the person and their people: names, tastes, health, age, family, where they live.

Registered in file order, before :mod:`.rules_work`'s; the first rule that
gives facts wins (so "I'm a big fan of" is a taste before it could be a job).
"""

from __future__ import annotations

import re

from exoclaw_hooks import Fact

from .grammar import CI, fact, many, rule
from .text import clean, clean_name, items, strip_article
from .vocab import (
    CONDITIONS,
    DATE_RE,
    DIETS,
    HEALTH_ADJECTIVES,
    MARITAL,
    NATIONALITIES,
    RELIGIONS,
    YEAR_RE,
    parse_number,
)

# names -------------------------------------------------------------------


@rule(r"^(?:be\s+|get\s+|go\s+)?(?:called|named|known as|go by)\s+(?P<o>.+)$")
def _called(m, chain, c):
    several = clean(m["o"])
    if several and re.fullmatch(r"[A-Z][\w'-]*(?:\s*,\s*[A-Z][\w'-]*)*\s+(?:and|&)\s+[A-Z][\w'-]*", several):
        return fact(chain, "name", several, c)  # "my cats are called Tofu and Miso"
    return fact(chain, "name", clean_name(m["o"]), c)


@rule(r"^prefer\s+(?:to be called|to go by|being called)\s+(?P<o>.+)$")
def _prefer_called(m, chain, c):
    return fact(chain, "name", clean_name(m["o"]), c)


# likes / dislikes / preferences (before "be a …": "I'm a big fan of")


@rule(
    r"^(?:hate|dislike|detest|loathe|despise|abhor|can'?t stand|cannot stand|can not stand|can'?t bear|"
    r"cannot bear|can'?t stomach|(?:don'?t|do not|doesn'?t|does not) (?:like|enjoy|care for)|"
    r"be not (?:a (?:big |huge )?fan of|into|keen on)|be (?:really )?not into)\s+(?P<o>.+)$"
)
def _dislikes(m, chain, c):
    return many(chain, "dislikes", items(m["o"]), c)


@rule(
    r"^(?:love|like|enjoy|adore|dig|fancy|be (?:a |an )?(?:big |huge |massive |total |die-hard )?fan of|"
    r"be (?:really |super |very )?into|be crazy about|be obsessed with|be passionate about|be keen on|"
    r"be addicted to|can'?t get enough of|can'?t live without)\s+(?P<o>.+)$"
)
def _likes(m, chain, c):
    return many(chain, "likes", items(m["o"]), c)


@rule(r"^(?:can'?t|cannot|can not|don'?t|do not|doesn'?t|does not|never)\s+(?:eat|drink)\s+(?P<o>.+)$")
def _avoids(m, chain, c):
    return many(chain, "avoids", items(m["o"]), c)


@rule(
    r"^(?:prefer|rather|'d rather|would rather)\s+(?:have\s+|drink\s+|eat\s+|use\s+)?(?P<o>.+?)"
    r"(?:\s+(?:over|to|than|rather than|instead of)\s+.+)?$"
)
def _prefers(m, chain, c):
    return fact(chain, "prefers", clean(m["o"]), c)


# health ------------------------------------------------------------------


@rule(r"^be\s+(?:very |severely |deathly |highly |mildly |slightly |super )?allergic to\s+(?P<o>.+)$")
def _allergic(m, chain, c):
    return many(chain, "allergy", items(m["o"]), c)


@rule(
    r"^have\s+(?:an?\s+)?(?:severe |mild |bad |serious |slight |terrible )?(?:allergy|allergies)\s+to\s+(?P<o>.+)$"
)
def _allergy_to(m, chain, c):
    return many(chain, "allergy", items(m["o"]), c)


@rule(r"^have\s+(?:an?\s+)?(?:severe |mild |bad |serious |slight |terrible )?(?P<o>[\w -]+?)\s+(?:allergy|allergies)$")
def _x_allergy(m, chain, c):
    return many(chain, "allergy", items(m["o"]), c)


@rule(r"^be\s+(?P<o>[^\W_]+)[\s-]+intolerant$")
def _intolerant(m, chain, c):
    return fact(chain, "allergy", f"{m['o'].lower()} (intolerance)", c)


@rule(r"^(?P<v>suffer from|struggle with|live with|was diagnosed with|be diagnosed with|got diagnosed with|"
      r"diagnosed with)\s+(?P<o>.+)$")
def _suffers(m, chain, c):
    found = [strip_article(v) for v in items(m["o"])]
    if m["v"].lower().startswith("live"):  # "live with my parents" is not a condition
        found = [v for v in found if any(w.lower().strip(",.") in CONDITIONS for w in v.split())]
    return many(chain, "health", found, c)


@rule(r"^be\s+(?P<o>[\w-]+)$")
def _be_adjective(m, chain, c):
    word = m["o"].lower()
    if word in HEALTH_ADJECTIVES:
        return fact(chain, "health", word, c)
    if word in DIETS:
        return fact(chain, "diet", word, c)
    if word in MARITAL:
        return fact(chain, "marital_status", word, c)
    if word in RELIGIONS:
        return fact(chain, "religion", m["o"].capitalize(), c)
    if word in NATIONALITIES:
        return fact(chain, "nationality", m["o"].capitalize(), c)
    return []


@rule(r"^be\s+(?:a |an )(?P<o>[\w-]+)$")
def _be_a_adjective(m, chain, c):
    word = m["o"].lower()
    if word in DIETS:
        return fact(chain, "diet", word, c)
    if word in RELIGIONS:
        return fact(chain, "religion", m["o"].capitalize(), c)
    return []


@rule(r"^be\s+(?P<h>half |part |half-|partly )?(?P<o>[A-Za-z]+(?:[ -][A-Za-z]+)?)$")
def _nationality(m, chain, c):
    words = re.split(r"[ -]", m["o"].lower())
    if all(w in NATIONALITIES for w in words if w != "and"):
        value = " ".join(w.capitalize() for w in m["o"].split())
        return fact(chain, "nationality", ((m["h"] or "").strip(" -") + " " + value).strip(), c)
    return []


# age ---------------------------------------------------------------------


@rule(
    r"^(?:be\s+(?:aged\s+|now\s+|only\s+|almost\s+|nearly\s+|about\s+)?|turned\s+|turn\s+|be turning\s+)"
    r"(?P<n>\d{1,3}|[a-z]+(?:[- ][a-z]+)?)(?P<u>\s+(?:years?|yrs?|months?|weeks?)(?:\s+old)?|\s*yo|\s*y/o|"
    r"\s+years of age)?(?:\s+(?:last|this|in|on|since|ago|now|today|yesterday|recently)\b.*)?$"
)
def _age(m, chain, c):
    n = parse_number(m["n"])
    if n is None or not 0 < n <= 130:
        return []
    unit = (m["u"] or "").strip().lower()
    if unit.startswith(("month", "week")):
        return fact(chain, "age", f"{n} {unit.split()[0]}", c)
    return fact(chain, "age", str(n), c)


# family ------------------------------------------------------------------


@rule(r"^be\s+(?:married|engaged)\s+to\s+(?P<o>.+)$")
def _married_to(m, chain, c):
    who = "fiancé" if "engaged" in m.group(0).lower() else "spouse"
    status = "engaged" if who == "fiancé" else "married"
    return fact(chain + [who], "name", clean_name(m["o"]), c) + fact(chain, "marital_status", status, c)


@rule(r"^(?:be|got)\s+(?P<o>married|engaged|divorced|widowed|separated)(?:\s+(?:for|since)\b.*)?$")
def _got_married(m, chain, c):
    return fact(chain, "marital_status", m["o"].lower(), c)


# where -------------------------------------------------------------------


@rule(r"^(?:be\s+|come\s+|hail\s+)from\s+(?P<o>.+)$")
def _from(m, chain, c):
    return fact(chain, "from", clean(m["o"]), c)


_TEMPORARY = re.compile(
    r"\b(?:for|until|till|over|through|during|this|next)\s+(?:the\s+|a\s+|a few\s+|two\s+|\d+\s+)?"
    r"(?:summer|winter|spring|autumn|fall|holidays?|weekend|week|month|days?|weeks?|months?|night|nights|now|"
    r"a while|trip|visit|conference)\b",
    CI,
)


def _place(value: str | None) -> str | None:
    v = clean(value)
    named = re.match(r"^(?:my|our)\s+[\w ]+?,\s*(?P<x>[A-Z].*)$", v or "")  # "my hometown, Leeds"
    if named:
        v = named["x"]
    if v and re.match(r"^(?:a|an|my|our|new|this|that|here)\b", v, CI):
        return None
    return v


@rule(r"^(?:live|reside|stay|be based|be located|be settled)\s+(?:together\s+|here\s+)?"
      r"(?P<p>in|near|outside|outside of|close to|out of)\s+"
      r"(?P<o>.+)$")
def _live_in(m, chain, c):
    if _TEMPORARY.search(m["o"]) and m.group(0).lower().startswith("stay"):
        return []  # "I'm staying in Rome for the summer": a visit, not a home
    place = _place(m["o"])
    prep = m["p"].lower()
    return fact(chain, "lives_in", place if prep in ("in", "out of") or not place else f"{prep} {place}", c)


@rule(r"^(?:live|reside)\s+(?:at|on)\s+(?P<o>.+)$")
def _live_at(m, chain, c):
    return fact(chain, "address", clean(m["o"]), c)


@rule(r"^call\s+(?P<o>.+?)\s+home$")
def _call_home(m, chain, c):
    return fact(chain, "lives_in", _place(m["o"]), c)


@rule(r"^moved\s+(?:back\s+|over\s+|away\s+|here\s+)?from\s+(?P<f>.+?)\s+(?:to|into)\s+(?P<o>.+)$")
def _moved_from_to(m, chain, c):
    return fact(chain, "moved_from", _place(m["f"]), c) + fact(chain, "lives_in", _place(m["o"]), c)


@rule(r"^moved\s+(?:back\s+|over\s+|out\s+)?(?:to|into)\s+(?P<o>.+?)(?:\s+from\s+(?P<f>.+))?$")
def _moved_to(m, chain, c):
    out = fact(chain, "lives_in", _place(m["o"]), c)
    if out and m["f"]:
        out += fact(chain, "moved_from", _place(m["f"]), c)
    return out


@rule(r"^moved\s+(?:here\s+|over\s+|away\s+)?from\s+(?P<f>.+)$")
def _moved_from(m, chain, c):
    return fact(chain, "moved_from", _place(m["f"]), c)


@rule(r"^born\s+(?:and\s+(?:raised|bred)\s+)?(?P<p>in|at|on)\s+(?P<o>.+?)(?:\s+(?:in|on)\s+(?P<d>.+))?$")
def _born(m, chain, c):
    out: list[Fact] = []
    raised = "raised" in m.group(0).lower() or "bred" in m.group(0).lower()
    where, when = m["o"], m["d"]
    if when and not (YEAR_RE.match(clean(when) or "") or DATE_RE.search(when)):
        where, when = f"{where} in {when}", None  # "born in a small town in Spain"
        year = re.match(r"^(?P<w>.+?)\s+in\s+(?P<y>(?:19|20)\d\d)$", where)
        if year:
            where, when = year["w"], year["y"]
    for value in (where, when):
        v = clean(value)
        if not v:
            continue
        if YEAR_RE.match(v):
            out += fact(chain, "birth_year", v, c)
        elif DATE_RE.search(v) or m["p"].lower() == "on":
            out += fact(chain, "birthday", v, c)
        else:
            out += fact(chain, "born_in", v, c)
            if raised:
                out += fact(chain, "grew_up_in", v, c)
    return out


@rule(r"^(?:grow\s+up|(?:was\s+|were\s+|be\s+)?(?:raised|brought\s+up))\s+(?:in|near|on|around)\s+(?P<o>.+)$")
def _grew_up(m, chain, c):
    return fact(chain, "grew_up_in", clean(m["o"]), c)


# work --------------------------------------------------------------------
