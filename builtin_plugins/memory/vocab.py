"""The words the memory layers share: predicates, how a fact reads, and word lists.

A fact is ``subject / predicate / object``. Subjects are ``"user"`` (the
person speaking) or a possessive chain from them (``"user's dog"``,
``"user's sister"``). Predicates come from a small controlled vocabulary
(:data:`PREDICATES`); anything said as "my X is Y" that is not in it becomes
the predicate ``X`` itself (spaces as ``_``), read back as "the user's X is Y".

The store keeps at most ONE active fact per subject and predicate (a new
value supersedes the old). That is right for ``lives_in`` or ``name`` but
wrong for relations a person has many of (they like sushi AND pizza), so
those predicates (:data:`SET_VALUED`) are stored with their item in the
predicate (``"likes sushi"``): see :func:`storage_fact`. :func:`base_predicate`
recovers the vocabulary word, :func:`render` the readable sentence.
"""

from __future__ import annotations

import re
from dataclasses import replace

from exoclaw_hooks import Fact

USER = "user"

#: relations a person has several of at once: the item is part of the identity
SET_VALUED = frozenset(
    {"likes", "dislikes", "prefers", "avoids", "allergy", "health", "speaks", "learning", "has", "owns", "studies",
     "hobby"}
)

#: how each vocabulary predicate reads ({s} subject, {o} object)
TEMPLATES: dict[str, str] = {
    "name": "{s_pos} name is {o}",
    "nickname": "{s} is also called {o}",
    "age": "{s} is {o} years old",
    "birthday": "{s_pos} birthday is {o}",
    "birth_year": "{s} was born in {o}",
    "born_in": "{s} was born in {o}",
    "from": "{s} is from {o}",
    "hometown": "{s_pos} hometown is {o}",
    "grew_up_in": "{s} grew up in {o}",
    "lives_in": "{s} lives in {o}",
    "moved_from": "{s} moved from {o}",
    "address": "{s_pos} address is {o}",
    "works_at": "{s} works at {o}",
    "works_in": "{s} works in {o}",
    "occupation": "{s_pos} occupation is {o}",
    "studies_at": "{s} studies at {o}",
    "studies": "{s} studies {o}",
    "allergy": "{s} is allergic to {o}",
    "health": "{s} has a health condition: {o}",
    "diet": "{s} is {o} (diet)",
    "speaks": "{s} speaks {o}",
    "native_language": "{s_pos} native language is {o}",
    "learning": "{s} is learning {o}",
    "likes": "{s} likes {o}",
    "dislikes": "{s} dislikes {o}",
    "prefers": "{s} prefers {o}",
    "avoids": "{s} does not eat or drink {o}",
    "hobby": "{s_pos} hobbies include {o}",
    "has": "{s} has {o}",
    "owns": "{s} owns {o}",
    "nationality": "{s} is {o}",
    "religion": "{s} is {o} (religion)",
    "marital_status": "{s} is {o}",
}

#: the controlled vocabulary (plus ``favourite_<thing>`` and "my X is Y" predicates)
PREDICATES = frozenset(TEMPLATES)

_ARTICLE = re.compile(r"^(?:a|an|the|my|some|one|two|three|four|five|\d+)\s+", re.IGNORECASE)


def base_predicate(predicate: str) -> str:
    """``"likes sushi"`` → ``"likes"``; any other predicate as it is."""
    head, _, rest = predicate.partition(" ")
    return head if rest and head in SET_VALUED else predicate


def item_key(obj: str) -> str:
    """The part of a set-valued object that identifies it: no article, lowercased."""
    text = " ".join(obj.split())
    text = _ARTICLE.sub("", text)
    return text.casefold() or obj.casefold()


def storage_fact(fact: Fact) -> Fact:
    """The fact as stored: set-valued predicates carry their item (``likes`` → ``likes sushi``).

    Idempotent, and a no-op for every other predicate, so an extractor
    plugged in instead of ours gets the same treatment.
    """
    predicate = fact.predicate.strip()
    if predicate in SET_VALUED and fact.object.strip():
        return replace(fact, predicate=f"{predicate} {item_key(fact.object)}")
    return fact


def _subject_text(subject: str) -> str:
    s = subject.strip()
    if not s:
        return "someone"
    if s.casefold() == USER or s.casefold().startswith(USER + "'s "):
        return "the " + s
    return s


def possessive(text: str) -> str:
    return text + ("'" if text.endswith("s") and not text.endswith("'s") else "'s")


def render(fact: Fact) -> str:
    """The fact as a sentence for the model: ``the user's dog's name is Luna``."""
    s = _subject_text(fact.subject)
    base = base_predicate(fact.predicate.strip())
    obj = fact.object.strip()
    template = TEMPLATES.get(base)
    if template is None and base.startswith("favourite_"):
        return f"{possessive(s)} favourite {base[len('favourite_'):].replace('_', ' ')} is {obj}"
    if template is None:
        return f"{possessive(s)} {base.replace('_', ' ')} is {obj}"
    return template.format(s=s, s_pos=possessive(s), o=obj)


def subject_of(chain: list[str]) -> str:
    """``[]`` → ``"user"``; ``["dog"]`` → ``"user's dog"``; ``["sister", "husband"]`` → ``"user's sister's husband"``.
    """
    return "'s ".join([USER, *chain]) if chain else USER


# ---------------------------------------------------------------- word lists

RELATIONS = frozenset(
    """mother mom mum mommy mummy mama ma father dad daddy papa pa parents parent sister brother sibling siblings
    son daughter kid kids child children baby wife husband spouse partner boyfriend girlfriend fiance fiancé
    fiancee fiancée grandmother grandma granny nana grandfather grandpa granddad grandson granddaughter
    grandchild grandkid aunt auntie uncle cousin niece nephew stepmother stepmom stepfather stepdad stepson
    stepdaughter stepbrother stepsister half-brother half-sister mother-in-law father-in-law sister-in-law
    brother-in-law son-in-law daughter-in-law friend bestie boss manager colleague coworker co-worker roommate
    flatmate housemate neighbour neighbor landlord landlady doctor dentist therapist teacher coach mentor ex
    ex-wife ex-husband ex-boyfriend ex-girlfriend twin twins godmother godfather godson goddaughter sons daughters
    brothers sisters grandparents grandkids grandchildren cousins""".split()
)

PETS = frozenset(
    """dog puppy pup doggo cat kitten kitty rabbit bunny hamster gerbil parrot bird budgie canary fish
    goldfish horse pony turtle tortoise snake lizard gecko iguana ferret rat mouse chinchilla hedgehog pig goat
    chicken hen cow pet""".split()
)

#: breeds people name instead of the animal ("I have a golden retriever named Max")
DOG_BREEDS = frozenset(
    """retriever labrador lab poodle beagle bulldog terrier spaniel shepherd husky corgi dachshund chihuahua pug
    collie doberman rottweiler greyhound whippet schnauzer pointer setter mastiff sheepdog pitbull pomeranian
    labradoodle cockapoo goldendoodle shiba akita malamute samoyed""".split()
)
CAT_BREEDS = frozenset("tabby siamese ragdoll sphynx bengal calico tortoiseshell maine coon".split())

#: adjectives allowed between "my" and a relation or pet ("my little sister")
KIN_ADJECTIVES = frozenset(
    "little older younger big baby eldest oldest youngest twin best new old late dear first second third".split()
)

THINGS = frozenset(
    """car bike bicycle motorcycle motorbike scooter house home apartment flat condo boat yacht garden cabin
    cottage farm laptop computer pc mac macbook iphone phone tablet ipad camera guitar piano violin drums drum
    tesla truck van business company shop store restaurant startup podcast blog channel bakery cafe""".split()
)

LANGUAGES = frozenset(
    """english spanish french german italian portuguese dutch russian chinese mandarin cantonese japanese korean
    arabic hindi urdu bengali punjabi turkish greek polish swedish norwegian danish finnish icelandic hebrew
    persian farsi vietnamese thai indonesian malay tagalog filipino swahili czech slovak hungarian romanian
    bulgarian serbian croatian bosnian slovenian ukrainian catalan basque galician welsh irish gaelic latin
    esperanto tamil telugu marathi gujarati kannada malayalam nepali sinhala khmer burmese mongolian kazakh
    uzbek georgian armenian azerbaijani albanian macedonian lithuanian latvian estonian afrikaans zulu xhosa
    yoruba igbo hausa amharic somali maori hawaiian asl bsl sign""".split()
)

NATIONALITIES = frozenset(
    """american british english canadian mexican brazilian argentinian argentine chilean colombian peruvian
    venezuelan cuban spanish french german italian portuguese dutch belgian swiss austrian irish scottish
    welsh swedish norwegian danish finnish icelandic polish czech slovak hungarian romanian bulgarian greek
    turkish russian ukrainian belarusian serbian croatian bosnian slovenian albanian lithuanian latvian
    estonian georgian armenian israeli lebanese syrian iraqi iranian persian egyptian moroccan algerian
    tunisian nigerian ghanaian kenyan ethiopian indian pakistani bangladeshi nepalese chinese japanese korean
    vietnamese thai filipino indonesian malaysian singaporean australian kiwi taiwanese jamaican haitian
    dominican puerto""".split()
)

RELIGIONS = frozenset(
    "christian catholic protestant orthodox muslim jewish buddhist hindu sikh atheist agnostic mormon".split()
)

MARITAL = frozenset("married single divorced engaged widowed separated".split())

DIETS = frozenset(
    "vegetarian vegan pescatarian pescetarian keto gluten-free halal kosher teetotal teetotaler teetotaller".split()
)

#: "I'm <adjective>" that is a health condition
HEALTH_ADJECTIVES = frozenset(
    """diabetic asthmatic epileptic pregnant deaf blind colorblind colourblind anemic anaemic celiac coeliac
    autistic dyslexic immunocompromised hypertensive disabled paralyzed paralysed""".split()
)

#: nouns that make "I have X" a health condition
CONDITIONS = frozenset(
    """asthma diabetes arthritis migraine migraines adhd add autism depression anxiety epilepsy celiac coeliac
    hypertension eczema psoriasis cancer covid flu cold fever insomnia dyslexia tinnitus scoliosis ptsd ocd
    bipolar lupus crohn's ibs gout anemia anaemia allergies hay sciatica fibromyalgia dementia parkinson's
    alzheimer's hepatitis hiv cholesterol pressure disease syndrome disorder injury infection condition
    intolerance""".split()
)

JOBS = frozenset(
    """nurse doctor physician surgeon dentist pharmacist teacher professor lecturer tutor engineer developer
    programmer coder designer architect lawyer attorney solicitor barrister accountant banker chef cook baker
    butcher waiter waitress bartender barista cashier clerk secretary receptionist manager director ceo cto
    cfo coo founder cofounder co-founder entrepreneur consultant analyst scientist researcher student pilot
    driver mechanic electrician plumber carpenter farmer firefighter fireman policeman policewoman officer
    cop detective soldier journalist reporter writer author novelist poet editor photographer artist painter
    sculptor illustrator animator musician singer songwriter composer actor actress dancer athlete coach
    trainer therapist psychologist psychiatrist counselor counsellor paramedic vet veterinarian librarian
    salesman saleswoman salesperson realtor translator interpreter nanny housewife homemaker freelancer
    contractor intern apprentice judge midwife optician technician sysadmin administrator economist chemist
    physicist mathematician statistician principal janitor cleaner gardener tailor hairdresser hairstylist
    barber beautician model youtuber streamer influencer blogger podcaster priest pastor rabbi imam nun monk
    sailor fisherman miner welder builder surveyor dietitian nutritionist physiotherapist physio radiologist
    pediatrician paediatrician cardiologist caregiver carer babysitter courier postman mailman pharmacologist
    biologist geologist historian archaeologist professor researcher clerk auditor broker trader investor
    marketer recruiter producer filmmaker director dj programmer tester scrum owner""".split()
)

#: words ending like a job that are not jobs ("I'm a big fan", "I'm a beginner")
NOT_JOBS = frozenset(
    """fan lover beginner member winner loser user person believer brother sister mother father daughter
    partner leader listener reader speaker sleeper eater drinker smoker gamer runner introvert extrovert
    parent resident citizen patient adult teenager grandmother grandfather newbie expert fighter survivor
    dreamer thinker hater neighbour neighbor foreigner stranger tourist regular customer client owl
    perfectionist optimist pessimist idiot genius mess twin vegetarian vegan pescatarian christian
    catholic atheist agnostic human woman man boy girl guy lady gentleman""".split()
)

_JOB_SUFFIX = re.compile(r"(?:ist|ian|eer|er|or|ant|ographer|ologist|man|woman|smith|wright)$")


def is_job(noun_phrase: str) -> tuple[bool, bool]:
    """``(is a job, explicitly known)`` for the head (last word) of ``noun_phrase``."""
    head = noun_phrase.lower().split()[-1] if noun_phrase.split() else ""
    if head in JOBS:
        return True, True
    if not head or head in NOT_JOBS or head in RELATIONS or head in PETS:
        return False, False
    return bool(_JOB_SUFFIX.search(head)) and len(head) > 4, False


NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
        sixteen seventeen eighteen nineteen""".split()
    )
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}


def parse_number(text: str) -> int | None:
    """``"7"``, ``"seven"``, ``"thirty-four"``, ``"thirty four"`` → the integer; else ``None``."""
    t = text.strip().lower().replace("-", " ")
    if t.isdigit():
        return int(t)
    words = t.split()
    if len(words) == 1:
        return NUMBER_WORDS.get(words[0], TENS.get(words[0]))
    if len(words) == 2 and words[0] in TENS and words[1] in NUMBER_WORDS and 0 < NUMBER_WORDS[words[1]] < 10:
        return TENS[words[0]] + NUMBER_WORDS[words[1]]
    return None


MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
DATE_RE = re.compile(rf"\b{MONTH}\b\.?|\b\d{{1,2}}[/.-]\d{{1,2}}(?:[/.-]\d{{2,4}})?\b", re.IGNORECASE)
YEAR_RE = re.compile(r"^(?:19|20)\d\d$")
