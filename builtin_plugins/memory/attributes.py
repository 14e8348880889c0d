"""\"my <attribute> is <value>\": the speaker's (or their people's) named attributes."""

from __future__ import annotations

import re

from exoclaw_hooks import Fact

from .grammar import CI, INFERRED, fact, many
from .text import clean, clean_name, items, singular, strip_article
from .vocab import DATE_RE, parse_number

ATTRIBUTES: dict[str, str] = {
    "name": "name", "first name": "name", "full name": "name", "given name": "name", "real name": "name",
    "nickname": "nickname", "last name": "surname", "surname": "surname", "family name": "surname",
    "age": "age", "birthday": "birthday", "bday": "birthday", "b-day": "birthday", "date of birth": "birthday",
    "birth date": "birthday", "dob": "birthday", "job": "occupation", "occupation": "occupation",
    "profession": "occupation", "line of work": "occupation", "career": "occupation", "day job": "occupation",
    "current job": "occupation", "job title": "job_title", "title": "job_title", "employer": "works_at",
    "workplace": "works_at", "email": "email", "email address": "email", "e-mail": "email", "phone": "phone",
    "phone number": "phone", "number": "phone", "cell": "phone", "mobile": "phone", "address": "address",
    "home address": "address", "home": "lives_in", "city": "lives_in", "hometown": "hometown",
    "home town": "hometown", "native language": "native_language", "mother tongue": "native_language",
    "first language": "native_language", "nationality": "nationality", "religion": "religion", "diet": "diet",
    "pronouns": "pronouns", "star sign": "star_sign", "zodiac sign": "star_sign", "sign": "star_sign",
    "blood type": "blood_type", "height": "height", "weight": "weight", "timezone": "timezone",
    "time zone": "timezone", "allergy": "allergy", "allergies": "allergy", "hobby": "hobby",
    "hobbies": "hobby", "major": "studies", "school": "studies_at", "university": "studies_at",
    "uni": "studies_at", "college": "studies_at", "languages": "speaks", "language": "speaks",
}
_SET_ATTRIBUTES = {"allergy", "hobby", "speaks"}
#: never remembered, whatever the phrasing
SECRETS = re.compile(r"\b(?:password|passcode|pin|ssn|social security|credit card|card number|cvv|iban|"
                     r"account number|secret|api key|token|login)\b", CI)
#: "my <X> is …" where X is not something about the person ("my point is", "my bad")
NOT_ATTRIBUTES = frozenset(
    """point question problem guess bad fault pleasure turn goal plan concern issue idea answer mistake bet
    opinion understanding impression head heart mind god gosh life day week weekend morning evening night
    advice suggestion request hope dream wish worry fear thought thoughts feeling sense apologies condolences
    reason excuse experience story situation code message prompt task internet wifi connection battery
    screen order package delivery flight train bus meeting appointment schedule deadline homework exam test
    test result results score team side hands back stomach leg arm favourite favorite fav fave""".split()
)
_STATES = re.compile(
    r"^(?:dead|broken|down|gone|missing|lost|late|busy|full|empty|fine|ok|okay|good|great|bad|terrible|awful|"
    r"weird|crazy|so|very|really|too|not|kind of|sort of|pretty|quite|totally|in|on|at|over|up|out|off|here|"
    r"there|being|getting|going|still|always|never|almost|about|like|that|to|because|\w+ing)\b",
    CI,
)


def favourite_predicate(thing: str) -> str:
    words = [singular(w) for w in re.findall(r"[a-z]+", thing.lower())]
    spelled = {"color": "colour", "flavor": "flavour", "neighbor": "neighbour", "theater": "theatre", "movie": "film"}
    return "favourite_" + "_".join(spelled.get(w, w) for w in words)


def attribute_facts(chain: list[str], attribute: str, value: str, confidence: float) -> list[Fact]:
    """"my <attribute> is <value>" (``chain`` owns the attribute: ``[]`` the speaker, ``["son"]`` their son)."""
    attr = " ".join(attribute.lower().split())
    if SECRETS.search(attr):
        return []
    fav = re.match(r"^(?:all-time\s+)?(?:favou?rite|fave?|most loved)\s+(?P<x>[a-z ]+)$", attr)
    if fav:
        return fact(chain, favourite_predicate(fav["x"]), clean(_drop_the_one(value)), confidence)
    predicate = ATTRIBUTES.get(attr)
    if predicate == "name" or predicate == "nickname" or predicate == "surname":
        return fact(chain, predicate, clean_name(value), confidence)
    if predicate == "age":
        n = parse_number((clean(value) or "").split(" ")[0])
        return fact(chain, "age", str(n), confidence) if n and 0 < n <= 130 else []
    if predicate in _SET_ATTRIBUTES:
        return many(chain, predicate, items(value), confidence)
    if predicate == "birthday":
        date = re.sub(r"^(?:on|in)\s+(?:the\s+)?", "", value.strip(), flags=CI)
        return fact(chain, "birthday", clean(date), confidence)
    if predicate == "occupation":
        return fact(chain, "occupation", clean(strip_article(value), max_words=5), confidence)
    if predicate:
        return fact(chain, predicate, clean(value), confidence)
    words = attr.split()
    if DATE_RE.search(value):
        value = re.sub(r"^(?:on|in)\s+(?:the\s+)?", "", value.strip(), flags=CI)  # "is in September"
    if (
        not 1 <= len(words) <= 3
        or words[0] in NOT_ATTRIBUTES
        or words[-1] in NOT_ATTRIBUTES
        or not all(re.fullmatch(r"[a-z][a-z-]*", w) for w in words)
        or _STATES.match(value.strip())
    ):
        return []
    return fact(chain, "_".join(words), clean(value), INFERRED)


def _drop_the_one(value: str) -> str:
    return re.sub(r"^(?:probably|definitely|currently|still)\s+", "", value.strip(), flags=CI)


def entity_copula_facts(chain: list[str], value: str, confidence: float) -> list[Fact]:
    """"my dog is a labrador": no rule matched; remember it as the owner's ``dog`` (inferred)."""
    v = value.strip()
    if not chain or _STATES.match(v) or not re.match(r"^(?:a|an|the)\s+\w+", v, CI):
        return []
    return fact(chain[:-1], "_".join(chain[-1].lower().split()), clean(v), INFERRED)
