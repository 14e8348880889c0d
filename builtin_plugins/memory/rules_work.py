"""Rules about work, study, languages and possessions, and the last resorts ("I'm Tom", "I'm in Berlin")."""

from __future__ import annotations

import re

from exoclaw_hooks import Fact

from .grammar import CI, INFERRED, fact, many, rule, verb_phrase_facts
from .text import (
    NAME_STOP,
    NOT_NAMES,
    clean,
    clean_name,
    items,
    singular,
    strip_article,
)
from .vocab import (
    CAT_BREEDS,
    CONDITIONS,
    DOG_BREEDS,
    LANGUAGES,
    NATIONALITIES,
    PETS,
    RELATIONS,
    THINGS,
    is_job,
    parse_number,
)

_FIELDS = (
    r"marketing|sales|finance|it|tech|healthcare|health care|education|retail|hr|law|consulting|banking|"
    r"insurance|real estate|construction|hospitality|software|accounting|engineering|media|advertising|pharma|"
    r"government|research|academia|logistics|manufacturing|publishing|fashion|politics|tourism|nursing|"
    r"medicine|journalism|design|film|music|gaming|security|cybersecurity|biotech|energy|agriculture"
)
_NOT_WORKPLACE = re.compile(r"^(?:home|night|nights|weekends?|the moment|a living|myself|free)$", CI)


@rule(rf"^(?:be|work)\s+in\s+(?P<o>{_FIELDS})$")
def _field(m, chain, c):
    return fact(chain, "works_in", m["o"].lower(), c)


@rule(r"^work\s+for\s+myself$|^be\s+self[- ]employed$")
def _self_employed(m, chain, c):
    return fact(chain, "occupation", "self-employed", c)


@rule(r"^work\s+as\s+(?:a |an )?(?P<o>.+?)(?:\s+(?:at|for|in)\s+(?P<w>.+))?$")
def _work_as(m, chain, c):
    out = fact(chain, "occupation", clean(m["o"], max_words=5), c)
    w = clean(m["w"])
    if out and w and not _NOT_WORKPLACE.match(w):
        out += fact(chain, "works_at", w, c)
    return out


@rule(r"^(?:work|be employed|be hired|got hired)\s+(?:at|for|by|with)\s+(?P<w>.+?)(?:\s+as\s+(?:a |an )?(?P<o>.+))?$")
def _work_at(m, chain, c):
    w = clean(m["w"])
    if not w or _NOT_WORKPLACE.match(w):
        return []
    if re.match(r"^\S+\s+with\b", m.group(0), CI) and not w[:1].isupper():
        return []  # "I worked with the artist": a colleague, not an employer
    return fact(chain, "works_at", w, c) + fact(chain, "occupation", clean(m["o"], max_words=5), c)


@rule(r"^work\s+in\s+(?P<w>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)(?:\s+(?:at|for)\s+(?P<x>.+))?$", 0)
def _work_in_place(m, chain, c):
    return fact(chain, "works_in", clean(m["w"]), c) + fact(chain, "works_at", clean(m["x"]), c)


@rule(r"^work\s+in\s+(?P<w>(?:a|an|the)\s+.+)$")
def _work_in_a(m, chain, c):
    return fact(chain, "works_at", clean(m["w"]), c)


@rule(r"^(?:run|own|have)\s+(?:my|our)\s+own\s+(?P<o>.+)$|^run\s+(?P<p>(?:a|an)\s+.+)$")
def _runs(m, chain, c):
    thing = clean(m["o"] or m["p"])
    return fact(chain, "owns", f"a {strip_article(thing)}" if thing else None, c)


@rule(r"^teach\s+(?P<o>[\w -]+?)(?:\s+(?:at|in)\s+(?P<w>.+))?$")
def _teach(m, chain, c):
    subject = m["o"].strip()
    if re.match(r"^(?:my|our|your|his|her|their|them|him|me|you|it|us|people|kids)\b", subject, CI):
        return []
    return fact(chain, "occupation", f"{subject} teacher", INFERRED) + fact(chain, "works_at", clean(m["w"]), INFERRED)


@rule(r"^(?:got|have|get|start(?:ed)?)\s+a\s+(?:new\s+)?job\s+(?:at|with)\s+(?P<w>.+?)"
      r"(?:\s+as\s+(?:a |an )?(?P<o>.+))?$")
def _new_job_at(m, chain, c):
    return fact(chain, "works_at", clean(m["w"]), c) + fact(chain, "occupation", clean(m["o"], max_words=5), c)


@rule(r"^(?:got|have|get|start(?:ed)?)\s+a\s+(?:new\s+)?job\s+as\s+(?:a |an )?(?P<o>.+)$")
def _new_job_as(m, chain, c):
    return fact(chain, "occupation", clean(m["o"], max_words=5), c)


@rule(r"^(?:do\s+)?(?P<o>.+?)\s+for\s+a\s+living$")
def _for_a_living(m, chain, c):
    return fact(chain, "occupation", clean(strip_article(m["o"]), max_words=5), c)


@rule(
    r"^be\s+(?P<o>retired|unemployed|between jobs|out of work|on (?:maternity|paternity|parental) leave|"
    r"a stay[- ]at[- ]home (?:mom|mum|dad|parent)|a homemaker|a housewife|a househusband)$"
)
def _status_job(m, chain, c):
    return fact(chain, "occupation", strip_article(m["o"].lower()), c)


@rule(r"^be\s+(?:a |an )(?P<o>[\w'-]+(?:\s+[\w'-]+){0,3}?)(?:\s+(?P<p>at|for|in|with|from)\s+(?P<w>.+?))?"
      r"(?:\s+by\s+(?:profession|trade))?$")
def _be_a_job(m, chain, c):
    if chain and chain[-1].split()[-1] in PETS:
        return []  # "my dog is a labrador" is not a job
    job, known = is_job(m["o"])
    if not job:
        return []
    what, out = m["o"], []
    aged = re.match(r"^(?P<n>\d{1,3})[- ]years?[- ]old\s+(?P<job>.+)$", what, CI)  # "a 34 year old teacher"
    if aged:
        what, out = aged["job"], fact(chain, "age", aged["n"], c)
    out += fact(chain, "occupation", what.lower() if what.islower() else what, c if known else INFERRED)
    w = clean(re.sub(r"\s+(?:studying|working|doing|living|majoring)\b.*$", "", m["w"] or "", flags=CI))
    if w and (m["p"] or "").lower() == "from":
        out += fact(chain, "from", w, c)
    elif w and (m["p"] or "").lower() in ("at", "for"):
        pred = "studies_at" if m["o"].lower().endswith("student") else "works_at"
        out += fact(chain, pred, w, c)
    return out


# study / languages --------------------------------------------------------


def _language(value: str) -> bool:
    return value.split()[0].lower().rstrip(",") in LANGUAGES if value.split() else False


@rule(r"^(?:speak|can speak|be fluent in|be conversational in|be bilingual in|know)\s+"
      r"(?P<o>(?:(?:fluent|some|basic|decent|good|a little|a bit of|a little bit of|conversational|native|"
      r"broken|perfect|a few words of)\s+)*.+)$")
def _speaks(m, chain, c):
    langs = [
        re.sub(r"^(?:(?:fluent|some|basic|decent|good|a little|a bit of|a little bit of|conversational|native|"
               r"broken|perfect|a few words of)\s+)+", "", x, flags=CI)
        for x in items(m["o"])
    ]
    if not langs or not all(_language(x) or x[:1].isupper() for x in langs):
        return []
    if m.group(0).lower().startswith("know") and not all(_language(x) for x in langs):
        return []
    return many(chain, "speaks", langs, c)


@rule(r"^be\s+an?\s+(?:native\s+(?P<a>\w+)\s+speaker|(?P<b>\w+)\s+native\s+speaker)$")
def _native(m, chain, c):
    lang = (m["a"] or m["b"]).capitalize()
    return fact(chain, "native_language", lang, c) + fact(chain, "speaks", lang, c)


@rule(r"^(?:learn|take\s+(?:classes|lessons)\s+in|be\s+taking\s+(?:classes|lessons)\s+in)\s+(?:how\s+)?(?P<o>.+)$")
def _learning(m, chain, c):
    return many(chain, "learning", items(m["o"]), c)


@rule(r"^(?:take|have)\s+(?P<o>[\w -]+?)\s+(?:lessons|classes|courses)$")
def _lessons(m, chain, c):
    return fact(chain, "learning", clean(m["o"]), c)


@rule(r"^(?:study|major\s+in|do\s+a\s+(?:degree|phd|masters?|ba|bsc|msc)\s+in)\s+(?P<o>.+?)(?:\s+at\s+(?P<w>.+))?$")
def _study(m, chain, c):
    what = clean(m["o"], max_words=5)
    out: list[Fact] = []
    if what and what.lower().startswith("at "):
        return fact(chain, "studies_at", clean(what[3:]), c)
    if what:
        out += fact(chain, "learning" if _language(what) else "studies", what, c)
    return out + fact(chain, "studies_at", clean(m["w"]), c)


@rule(r"^(?:go\s+to|attend)\s+(?P<w>.*\b(?:university|college|school|academy|institute|uni)\b.*)$")
def _attends(m, chain, c):
    return fact(chain, "studies_at", clean(m["w"]), c)


# possessions and relatives ---------------------------------------------------

_QUANTITY = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d+|some)"


@rule(rf"^(?:have|own|adopted|got|rescued)\s+(?P<q>{_QUANTITY})\s+(?P<k>(?:[\w-]+\s+){{0,4}}?[\w-]+),?\s+"
      r"(?:named|called|who(?:'s| is) (?:called|named))\s+(?P<n>.+?)"
      rf"(?:,?\s+and\s+(?P<more>{_QUANTITY}\s+.+?\s+(?:named|called)\s+.+))?$")
def _has_named(m, chain, c):
    """"a cat named Miso", "a 3 year old golden retriever called Max and a tabby called Tigger"."""
    age = re.search(r"\b(\d{1,3})[- ](year|month|week)s?[- ]old\b", m["k"], CI)
    described = re.sub(r"\b\d{1,3}[- ](?:year|month|week)s?[- ]old\b", "", m["k"], flags=CI).split()
    head = singular(described[-1]) if described else singular(m["k"].split()[-1])
    kind = "dog" if head in DOG_BREEDS else "cat" if head in CAT_BREEDS else head
    out = fact(chain + [kind], "name", clean_name(m["n"]), c)
    if out and kind != head:
        out += fact(chain + [kind], "breed", " ".join(described).lower(), INFERRED)
    if out and age:
        value = age.group(1) if age.group(2).lower() == "year" else f"{age.group(1)} {age.group(2).lower()}s"
        out += fact(chain + [kind], "age", value, c)
    if m["more"]:
        out += verb_phrase_facts(chain, "have " + m["more"], c)
    return out


@rule(rf"^(?:have|own)\s+(?P<q>{_QUANTITY})\s+(?P<k>[a-zA-Z-]+),\s+"
      r"(?P<n>[A-Z][\w'-]*(?:(?:\s*,\s*|\s+and\s+|\s*&\s*)[A-Z][\w'-]*)*)$", 0)
def _has_apposition(m, chain, c):
    kind = m["k"].lower()
    if m["q"].lower() in ("a", "an", "one"):
        return fact(chain + [singular(kind)], "name", clean_name(m["n"]), c)
    return fact(chain, "has", f"{m['q']} {kind}", c) + fact(chain + [kind], "name", clean(m["n"]), c)


@rule(r"^have\s+(?P<n>\d+|[a-z]+)\s+(?P<k>kids|children|sons|daughters|brothers|sisters|siblings|grandchildren|"
      r"grandkids|dogs|cats|pets|cars|horses)$")
def _has_count(m, chain, c):
    n = parse_number(m["n"])
    if n is None:
        return []
    return fact(chain, "has", f"{n} {m['k'].lower()}", c)


@rule(r"^(?:have|own)\s+(?P<o>.+)$")
def _has(m, chain, c):
    value = clean(m["o"])
    if not value:
        return []
    words = [w.strip(",.").lower() for w in value.split()]
    if any(w in CONDITIONS for w in words):
        return many(chain, "health", [strip_article(v) for v in items(value)], c)
    if not re.match(rf"^{_QUANTITY}\b", value, CI):
        return []
    if m.group(0).lower().startswith("own"):
        return fact(chain, "owns", value, c)
    owned = []
    for item in items(value) or [value]:
        last = item.split()[-1]
        if re.match(rf"^{_QUANTITY}\b", item, CI) and (
            singular(last) in PETS | THINGS | RELATIONS or last.lower() in RELATIONS or last[:1].isupper()
        ):
            owned.append(item)
    return many(chain, "has", owned, c)


@rule(r"^drive\s+(?P<o>(?:a|an)\s+.+)$")
def _drives(m, chain, c):
    return fact(chain, "car", clean(m["o"]), INFERRED)


# the last resorts: "I'm Tom", "I'm in Berlin" ---------------------------------


@rule(r"^be\s+(?P<o>(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+)?[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+){0,2})"
      r"(?:\s+(?:from|of)\s+(?P<f>.+))?$", 0)
def _bare_name(m, chain, c):
    """"I'm Tom", "I'm Sarah from Leeds" (capitalised, and not "I'm Spanish" or "I'm OK")."""
    words = m["o"].split()
    if any(w.lower() in NOT_NAMES for w in words) or words[0].lower() in NATIONALITIES | LANGUAGES:
        return []
    if len(words) == 1 and words[0].isupper() and len(words[0]) > 1 and words[0].lower() in NAME_STOP:
        return []
    return fact(chain, "name", clean_name(m["o"]), c) + fact(chain, "from", clean(m["f"]), c)


@rule(r"^be\s+(?P<o>[A-Z][\w'-]*(?:\s*,\s*[A-Z][\w'-]*)*\s+(?:and|&)\s+[A-Z][\w'-]*)$", 0)
def _plural_names(m, chain, c):
    return fact(chain, "name", clean(m["o"]), c) if chain else []


@rule(r"^be\s+in\s+(?P<o>[A-Z][\w'-]*(?:[ ,]+[A-Z][\w'-]*)*)\b.*$", 0)
def _location(m, chain, c):
    return fact(chain, "location", clean(m["o"]), INFERRED)
