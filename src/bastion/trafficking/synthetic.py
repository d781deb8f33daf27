"""Synthetic classified ads with labels, for tests, evaluation and benchmarks (no real data).

Seeded and reproducible: the same :class:`SyntheticConfig` and seed give the same ads, byte
for byte. All text is bland service-ad filler about availability, scheduling and locations;
nothing sexual and nothing describing anyone. Phone numbers come only from ranges reserved for
fiction: US ``NPA-555-0100`` to ``NPA-555-0199`` (any valid area code) and UK Ofcom drama
ranges (``020 7946 0xxx``, ``0113 496 0xxx`` ...). Each number is used by one ad or one
network only, at any size: when the ranges run out (about 58,000 numbers), further ads and
networks get a unique ``example.com`` e-mail address (RFC 2606 reserved domain) instead of a
phone, so unrelated ads never share a contact.

What is planted, with labels (:class:`SyntheticAd`):

- **networks** of known membership (``network`` label), posted across cities and days, linked
  by exactly one kind each: a shared phone number (written in a different form per ad), a
  shared e-mail, a shared handle, a shared photo (PDQ hash of one picture with a few bits
  flipped per ad, as re-encoding does) or a shared template text with varying slots;
- **single ads** (no network) with their own text, phone and photo;
- **legal-style ads** that use the phrasing found *not* predictive (movement language, stated
  age 18-22; Lugo-Graulich et al. 2024), labelled ``trafficking=False``;
- in network ads, the four validated indicators at ``indicator_rate`` each (youthful language,
  stated ethnicity, trustworthy-provider language, and an obscured phone at
  ``disguise_rate``), every planted phrase with its span;
- numbers that are not phones (prices, times, dates, ages, heights, room numbers, ZIP codes) at
  ``distractor_rate``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import phonenumbers

from bastion.trafficking.schemas import Ad

# --------------------------------------------------------------------------------------------
# Fictional phone numbers


@lru_cache(maxsize=1)
def _us_area_codes() -> tuple[str, ...]:
    out = []
    for npa in range(201, 990):
        num = phonenumbers.parse(f"+1{npa}5550100")
        if phonenumbers.is_valid_number(num):
            out.append(str(npa))
    return tuple(out)


#: UK drama ranges (Ofcom, "Telephone numbers for drama purposes", the 1,000-number blocks
#: of geographic area codes; each block start checked valid with libphonenumber by
#: :func:`fictional_phones`): area code, local prefix, free digits. Not used: 07700 900xxx and
#: 01632 960xxx (Ofcom drama ranges too, but libphonenumber rejects them as invalid) and the
#: 0808/0909/0306 blocks (non-geographic, not written like the ads' numbers). US: 555-0100 to
#: 555-0199 are reserved for fiction in every area code (NANPA, "555 NXX line numbers").
_UK_RANGES = (
    ("20", "7946 0", 3), ("113", "496 0", 3), ("114", "496 0", 3), ("116", "496 0", 3),
    ("117", "496 0", 3), ("118", "496 0", 3), ("121", "496 0", 3), ("131", "496 0", 3),
    ("141", "496 0", 3), ("151", "496 0", 3), ("161", "496 0", 3), ("191", "498 0", 3),
    ("28", "9649 6", 3),
)


@dataclass(frozen=True, slots=True)
class FictionalPhone:
    """A reserved fictional number: ``e164``, national ``groups`` as usually written
    (``("202", "555", "0143")``, ``("020", "7946", "0143")``) and its ``region``."""

    e164: str
    groups: tuple[str, ...]
    region: str


def fictional_phones(region: str) -> Iterator[FictionalPhone]:
    """Every reserved fictional number of ``region`` (``US``: 100 per valid area code;
    ``GB``: the drama ranges that libphonenumber's metadata accepts as valid), in a fixed
    order. Raises ValueError for another region."""
    if region == "US":
        for npa in _us_area_codes():
            for k in range(100, 200):
                yield FictionalPhone(f"+1{npa}5550{k}", (npa, "555", f"0{k}"), "US")
    elif region == "GB":
        for area, prefix, free in _UK_RANGES:
            for k in range(10**free):
                local = (prefix + f"{k:0{free}d}").split()
                e164 = "+44" + area + "".join(local)
                if k == 0 and not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
                    break
                yield FictionalPhone(e164, ("0" + area, *local), "GB")
    else:
        raise ValueError(f"no fictional range known for {region!r}")


# --------------------------------------------------------------------------------------------
# Writing a phone number, plainly or disguised

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Plain forms (``disguised`` False in the label).
PLAIN_FORMS = ("dashes", "parens", "dots", "spaces", "intl")
#: Disguised forms (``disguised`` True in the label).
DISGUISED_FORMS = (
    "spelled", "mixed", "oh_el", "spaced", "stars", "fullwidth", "keycaps", "line_break",
    "math", "circled", "zero_width", "underscores", "spelled_dashes", "oh_words", "slashes",
)
_KEYCAP = "\ufe0f\u20e3"


def write_phone(phone: FictionalPhone, form: str, rng: random.Random) -> str:
    """``phone`` written in ``form`` (one of :data:`PLAIN_FORMS` or :data:`DISGUISED_FORMS`).

    Raises ValueError for an unknown form.
    """
    g = list(phone.groups)
    digits = "".join(g)
    if form == "dashes":
        return "-".join(g)
    if form == "parens":
        return f"({g[0]}) " + "-".join(g[1:]) if phone.region == "US" else " ".join(g)
    if form == "dots":
        return ".".join(g)
    if form == "spaces":
        return " ".join(g)
    if form == "intl":
        cc = "1" if phone.region == "US" else "44"
        national = g if phone.region == "US" else [g[0][1:], *g[1:]]
        return f"+{cc} " + " ".join(national)
    if form == "spelled":
        return " ".join(_WORDS[int(d)] for d in digits)
    if form == "spelled_dashes":
        return "-".join(_WORDS[int(d)] for d in digits)
    if form == "oh_words":
        return " ".join("oh" if d == "0" else _WORDS[int(d)] for d in digits)
    if form == "mixed":
        parts = []
        for grp in g:
            chars = [_WORDS[int(d)] if rng.random() < 0.5 else d for d in grp]
            if all(c.isdigit() for c in chars):
                chars[0] = _WORDS[int(grp[0])]
            parts.append("".join(chars))
        return " ".join(parts)
    if form == "oh_el":
        out = []
        for grp in g:
            out.append("".join(rng.choice("Oo") if d == "0" and rng.random() < 0.7 else
                               rng.choice("lI") if d == "1" and rng.random() < 0.7 else d
                               for d in grp))
        joined = "-".join(out)
        if joined == "-".join(g):  # nothing substituted by chance: substitute one digit
            k = min((joined.find(d) for d in "01" if d in joined), default=-1)
            if k >= 0:  # fictional numbers always hold a 0 or a 1
                joined = joined[:k] + ("O" if joined[k] == "0" else "l") + joined[k + 1 :]
        return joined
    if form == "spaced":
        return " ".join(digits)
    if form == "stars":
        return "*".join(digits) if rng.random() < 0.5 else "**".join(g)
    if form == "underscores":
        return "_".join(g)
    if form == "slashes":
        return " / ".join(" ".join(grp) for grp in g)
    if form == "fullwidth":
        return " ".join("".join(chr(0xFF10 + int(d)) for d in grp) for grp in g)
    if form == "math":
        return "-".join("".join(chr(0x1D7CE + int(d)) for d in grp) for grp in g)
    if form == "circled":
        circ = {0: "\u24ea", **{k: chr(0x2460 + k - 1) for k in range(1, 10)}}
        return " ".join("".join(circ[int(d)] for d in grp) for grp in g)
    if form == "keycaps":
        return "".join(d + _KEYCAP for d in digits)
    if form == "line_break":
        cut = max(1, len(g) - 1)
        return " ".join(g[:cut]) + "\n" + " ".join(g[cut:])
    if form == "zero_width":
        return "\u200b".join(digits)
    raise ValueError(f"unknown phone form {form!r}")


# --------------------------------------------------------------------------------------------
# Filler text (neutral)

_NAMES = (
    "Anna", "Bella", "Carmen", "Dana", "Elena", "Fiona", "Gina", "Hana", "Iris", "Jade",
    "Kara", "Lena", "Mia", "Nora", "Olga", "Paula", "Rita", "Sara", "Tina", "Vera", "Wendy",
    "Yara", "Zoe", "Alma", "Beth", "Cleo", "Dora", "Edie", "Faye", "Greta", "Hope", "Ines",
    "Joy", "Kim", "Lara", "Maya", "Nina", "Opal", "Pia", "Rosa", "Skye", "Tess", "Uma",
)
_ADJ = (
    "quiet", "bright", "cozy", "modern", "central", "sunny", "tidy", "spacious", "calm",
    "friendly", "green", "leafy", "colourful", "wooden", "historic", "riverside", "airy",
    "warm", "elegant", "simple", "cheerful", "relaxed", "lively", "compact", "peaceful",
    "sleek", "rustic", "vintage", "polished", "charming", "breezy", "shaded", "northern",
    "southern", "eastern", "western", "upper", "lower", "grand", "busy", "tranquil", "sunlit",
    "smart", "neat", "handsome", "stylish", "gentle", "pleasant", "curved", "tiled", "marble",
)
_NOUN = (
    "plaza", "square", "avenue", "boulevard", "market", "harbour", "park", "garden",
    "station", "library", "museum", "bridge", "tower", "gallery", "arcade", "terrace", "court",
    "quarter", "corner", "lane", "crescent", "promenade", "pier", "theatre", "stadium", "mall",
    "district", "village", "esplanade", "courtyard", "embankment", "fountain", "orchard",
    "meadow", "wharf", "dock", "depot", "exchange", "pavilion", "rotunda", "atrium", "lobby",
)
_WHEN = (
    "today", "tonight", "this evening", "this afternoon", "on Monday", "on Tuesday",
    "on Wednesday", "on Thursday", "on Friday", "on Saturday", "on Sunday", "this weekend",
    "most mornings", "late evenings", "weekdays", "after lunch",
)
_FRAMES = (
    "Open for bookings {when} near the {a1} {n1}.",
    "Appointments are easy to arrange by message, close to the {a1} {n1}.",
    "You will find the place beside the {a1} {n1} and the {a2} {n2}.",
    "A {a1} room with {a2} lighting and a view of the {n1}.",
    "Weekday and weekend time slots are open at the {a1} {n1}.",
    "Parking is available behind the {a1} {n1}.",
    "Please message ahead to confirm a time slot {when}.",
    "Short notice is fine when the calendar allows, ask about the {a1} {n1}.",
    "The {a1} {n1} entrance is the easiest way in.",
    "Easy to reach from the {n1} stop on the {a1} line.",
    "Thank you for reading and have a {a1} day.",
    "Bookings are taken in order, so write early for the {a1} slots.",
    "Ring the bell at the {a1} door beside the {n1}.",
    "Tea and water are offered in the {a1} waiting area.",
    "Cards and cash are both fine at the {a1} {n1} desk.",
    "Lifts and stairs both lead to the {a1} {n1} floor.",
    "Ask about the {a1} {n1} on arrival.",
    "Evening hours run late at the {a1} {n1}.",
    "Morning times are often free near the {a1} {n2}.",
    "Cancellations are accepted up to a day before.",
)
_GREETINGS = (
    "Hello, my name is {name}.", "Hi, I am {name}.", "Welcome, this is {name}.",
    "Greetings from {name}.", "{name} here.", "Good day, {name} speaking.",
)
_CONTACT_LINES = (
    "Call {phone} to book.", "Text {phone} for times.", "Bookings on {phone}.",
    "Reach me on {phone}.", "Message {phone} anytime.", "Phone {phone} for details.",
)
_PLANT: dict[str, tuple[str, ...]] = {
    "youthful-language": ("young", "youthful", "new to this", "just turned 18", "teen"),
    "stated-ethnicity": ("latina", "asian", "european", "colombian", "brazilian", "thai"),
    "trustworthy-provider": ("discreet", "reliable", "verified", "genuine", "punctual",
                             "trustworthy"),
    "movement-language": ("new in town", "leaving soon", "limited time", "just arrived",
                           "in town for", "back in town"),
}
_PLANT_LINES: dict[str, tuple[str, ...]] = {
    "youthful-language": ("Described as {p} by all.", "Always {p} at heart.", "Truly {p}."),
    "stated-ethnicity": ("Proudly {p}.", "A {p} lady.", "Heritage: {p}."),
    "trustworthy-provider": ("Always {p}.", "Known to be {p}.", "Completely {p}."),
    "movement-language": ("{P} {city}.", "{P} this week only.", "{P}, book early."),
}

_US_CITIES = (
    "Houston, TX", "Dallas, TX", "Austin, TX", "Atlanta, GA", "Miami, FL", "Orlando, FL",
    "Phoenix, AZ", "Denver, CO", "Chicago, IL", "Detroit, MI", "Seattle, WA", "Portland, OR",
    "Las Vegas, NV", "Los Angeles, CA", "San Diego, CA", "Newark, NJ", "Boston, MA",
    "Charlotte, NC", "Nashville, TN", "Memphis, TN", "Baltimore, MD", "Columbus, OH",
)
_UK_CITIES = ("London, UK", "Leeds, UK", "Manchester, UK", "Glasgow, UK", "Bristol, UK",
              "Liverpool, UK", "Cardiff, UK", "Sheffield, UK")


@dataclass(frozen=True, slots=True)
class PlantedPhone:
    """A phone planted in an ad: its E.164 answer, the ``raw`` text, ``span`` in the ad's
    text (code points, end exclusive), the writing ``form`` and whether it is disguised."""

    e164: str
    raw: str
    span: tuple[int, int]
    form: str
    disguised: bool


@dataclass(frozen=True, slots=True)
class SyntheticAd:
    """One generated ad and its labels.

    ``kind`` is ``network``, ``single`` or ``legal``; ``network`` the true network label
    (``None`` for ads in no network); ``link`` how the network is linked (``phone``,
    ``email``, ``handle``, ``photo``, ``text``); ``trafficking`` the class label;
    ``indicators`` planted ``(entry id, span)`` pairs (the obscured phone included).
    """

    ad: Ad
    kind: str
    network: str | None
    link: str | None
    trafficking: bool
    phones: tuple[PlantedPhone, ...]
    indicators: tuple[tuple[str, tuple[int, int]], ...]


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """How many ads of each kind, and the rates of what is planted (probabilities 0-1)."""

    networks: int = 20
    network_size: tuple[int, int] = (3, 8)
    singles: int = 40
    legal: int = 40
    link_kinds: tuple[str, ...] = ("phone", "phone", "email", "handle", "photo", "text")
    disguise_rate: float = 0.4
    indicator_rate: float = 0.5
    legal_indicator_rate: float = 0.1
    movement_rate: float = 0.8
    distractor_rate: float = 0.5
    uk_share: float = 0.2
    photo_flip_bits: int = 10
    start: datetime = field(default_factory=lambda: datetime(2024, 3, 1, tzinfo=UTC))
    days: int = 60


class _Builder:
    """Accumulates text pieces and records the spans of planted ones."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[tuple[str, tuple[int, int], str]] = []

    def add(self, text: str, planted: dict[str, tuple[str, str]] | None = None) -> None:
        """Append a sentence; ``planted`` maps a placeholder to (label, value)."""
        if self.parts:
            self.parts.append(" ")
            self.length += 1
        if not planted:
            self.parts.append(text)
            self.length += len(text)
            return
        pos = 0
        while pos < len(text):
            nxt = min(((text.find(k, pos), k) for k in planted if text.find(k, pos) >= 0),
                      default=(-1, ""))
            if nxt[0] < 0:
                self.parts.append(text[pos:])
                self.length += len(text) - pos
                break
            i, key = nxt
            self.parts.append(text[pos:i])
            self.length += i - pos
            label, value = planted[key]
            self.spans.append((label, (self.length, self.length + len(value)), value))
            self.parts.append(value)
            self.length += len(value)
            pos = i + len(key)

    def text(self) -> str:
        """The ad's text built so far."""
        return "".join(self.parts)


def _filler(rng: random.Random, k: int) -> list[str]:
    """``k`` filler sentences with fixed vocabulary (one *template*); ``{when}`` stays."""
    frames = rng.sample(_FRAMES, k)
    out = []
    for f in frames:
        out.append(f.replace("{a1}", rng.choice(_ADJ)).replace("{a2}", rng.choice(_ADJ))
                   .replace("{n1}", rng.choice(_NOUN)).replace("{n2}", rng.choice(_NOUN)))
    return out


def _distractor(rng: random.Random) -> str:
    choices = [
        f"Rates from ${rng.randint(8, 30) * 10} per hour.",
        f"Open {rng.randint(8, 11)}am to {rng.randint(6, 11)}pm.",
        f"Available from {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2024.",
        f"Booked until {rng.randint(10, 12)}:{rng.choice(['00', '15', '30', '45'])} today.",
        f"Age {rng.randint(24, 45)}, height 5'{rng.randint(0, 11)}\".",
        f"Room {rng.randint(100, 2999)}, zip {rng.randint(10000, 99999)}.",
        f"Suite {rng.randint(10, 999)}, {rng.randint(2, 60)} min from downtown.",
        f"On {rng.choice(['May', 'June', 'July'])} {rng.randint(1, 28)} the hours change.",
    ]
    return " ".join(rng.sample(choices, 2))


def _pdq_variant(base: int, flips: int, rng: random.Random) -> str:
    h = base
    for bit in rng.sample(range(256), flips):
        h ^= 1 << bit
    return f"{h:064x}"


def generate(config: SyntheticConfig | None = None, seed: int = 0) -> list[SyntheticAd]:
    """Generate labelled ads (see the module docstring); ordered by ``posted_at``, then id.

    Fictional numbers (45,100 US and 13,000 UK) are never reused: once a region's run out,
    an ad gets a unique ``example.com`` e-mail address instead of a phone (``phones`` empty),
    and a phone-linked network a shared one (its ``link`` label is then ``email``).
    """
    cfg = config or SyntheticConfig()
    rng = random.Random(seed)
    # shuffled pools spread networks over area codes; each number is used once
    us_all = list(fictional_phones("US"))
    gb_all = list(fictional_phones("GB"))
    rng.shuffle(us_all)
    rng.shuffle(gb_all)
    pools = {"US": iter(us_all), "GB": iter(gb_all)}

    def new_phone(region: str) -> FictionalPhone | None:
        return next(pools[region], None)

    out: list[SyntheticAd] = []
    counter = 0

    def when(day_offset: int) -> datetime:
        return cfg.start + timedelta(days=day_offset, minutes=rng.randint(0, 24 * 60 - 1))

    def make_ad(
        *, kind: str, network: str | None, link: str | None, trafficking: bool,
        region: str, city: str, posted: datetime, template: list[str] | None,
        phone: FictionalPhone | None, form: str, plants: dict[str, str], movement: str | None,
        age: int | None, extra_contact: str | None, pdq: tuple[str, ...], name: str,
    ) -> SyntheticAd:
        nonlocal counter
        counter += 1
        ad_id = f"ad-{counter:06d}"
        b = _Builder()
        b.add(rng.choice(_GREETINGS).replace("{name}", name))
        sentences = template if template is not None else _filler(rng, rng.randint(4, 6))
        when_txt = rng.choice(_WHEN)
        for k, s in enumerate(sentences):
            b.add(s.replace("{when}", when_txt))
            if k == 1:
                for eid, phrase in sorted(plants.items()):
                    line = _PLANT_LINES[eid][len(phrase) % len(_PLANT_LINES[eid])]
                    b.add(line, {"{p}": (eid, phrase)})
        if movement is not None:
            line = _PLANT_LINES["movement-language"][len(movement) % 3]
            cap = movement[0].upper() + movement[1:]
            b.add(line.replace("{city}", city.split(",")[0]),
                  {"{P}": ("movement-language", cap)})
        if age is not None:
            b.add(f"Age {age}.", {})
            start = b.length - len(f"{age}.") - len("Age ")
            b.spans.append(("stated-age-under-23", (start, start + len(f"Age {age}")), ""))
        if rng.random() < cfg.distractor_rate:
            b.add(_distractor(rng))
        if phone is not None:
            raw = write_phone(phone, form, rng)
            line = rng.choice(_CONTACT_LINES)
            b.add(line, {"{phone}": ("phone", raw)})
        elif extra_contact is None or "@" not in extra_contact:
            # out of fictional numbers: a contact of this ad alone (counter is unique)
            b.add(f"Write to {rng.choice(_NAMES).lower()}.{counter}@example.com for times.")
        if extra_contact is not None:
            b.add(extra_contact)
        text = b.text()
        phones = []
        indicators = []
        disguised = form in DISGUISED_FORMS
        for label, span, _value in b.spans:
            if label == "phone" and phone is not None:
                phones.append(PlantedPhone(phone.e164, raw, span, form, disguised))
                if disguised:
                    indicators.append(("obscured-phone", span))
            else:
                indicators.append((label, span))
        ad = Ad(ad_id=ad_id, text=text, location=city, posted_at=posted, pdq=pdq)
        return SyntheticAd(ad, kind, network, link, trafficking, tuple(phones),
                           tuple(sorted(indicators, key=lambda t: (t[1], t[0]))))

    def pick_region() -> str:
        return "GB" if rng.random() < cfg.uk_share else "US"

    def city_of(region: str) -> str:
        return rng.choice(_UK_CITIES if region == "GB" else _US_CITIES)

    def phone_form(rate: float) -> str:
        return rng.choice(DISGUISED_FORMS) if rng.random() < rate else rng.choice(PLAIN_FORMS)

    def plants_for(rate: float) -> dict[str, str]:
        return {eid: rng.choice(_PLANT[eid]) for eid in
                ("youthful-language", "stated-ethnicity", "trustworthy-provider")
                if rng.random() < rate}

    for n in range(cfg.networks):
        label = f"N{n + 1:04d}"
        link = cfg.link_kinds[n % len(cfg.link_kinds)]
        size = rng.randint(*cfg.network_size)
        region = pick_region()
        shared_phone = new_phone(region) if link == "phone" else None
        shared_email = f"{rng.choice(_NAMES).lower()}.{rng.choice(_NOUN)}{n}@example.com"
        if link == "phone" and shared_phone is None:
            link = "email"  # out of fictional numbers: never reuse one
        shared_handle = f"{rng.choice(_NAMES).lower()}_{rng.choice(_ADJ)}{n}"
        base_photo = rng.getrandbits(256)
        template = _filler(rng, 6) if link == "text" else None
        plants = plants_for(cfg.indicator_rate)
        cities = rng.sample(_UK_CITIES if region == "GB" else _US_CITIES, 3)
        day0 = rng.randint(0, max(0, cfg.days - 10))
        for k in range(size):
            city = cities[min(k * 3 // size, 2)]
            phone = shared_phone if link == "phone" else new_phone(region)
            form = phone_form(cfg.disguise_rate)
            if link == "text" and form in DISGUISED_FORMS and form not in (
                "fullwidth", "math", "stars", "keycaps", "zero_width", "circled", "oh_el",
                "underscores", "line_break"
            ):
                form = "stars"  # keep the word count of text-linked ads close to each other
            extra = None
            if link == "email":
                extra = f"Write to {shared_email} for bookings."
            elif link == "handle":
                extra = f"Snap: {shared_handle}"
            photos: tuple[str, ...] = ()
            if link == "photo":
                photos = (_pdq_variant(base_photo, rng.randint(0, cfg.photo_flip_bits), rng),)
            out.append(make_ad(
                kind="network", network=label, link=link, trafficking=True, region=region,
                city=city, posted=when(day0 + k), template=template, phone=phone, form=form,
                plants=plants, movement=None, age=None, extra_contact=extra, pdq=photos,
                name=rng.choice(_NAMES),
            ))
    for _ in range(cfg.singles):
        region = pick_region()
        out.append(make_ad(
            kind="single", network=None, link=None, trafficking=False, region=region,
            city=city_of(region), posted=when(rng.randint(0, cfg.days - 1)), template=None,
            phone=new_phone(region), form=phone_form(cfg.disguise_rate / 2),
            plants=plants_for(cfg.legal_indicator_rate), movement=None, age=None,
            extra_contact=None, pdq=(f"{rng.getrandbits(256):064x}",), name=rng.choice(_NAMES),
        ))
    for _ in range(cfg.legal):
        region = pick_region()
        city = city_of(region)
        movement = rng.choice(_PLANT["movement-language"]) if rng.random() < cfg.movement_rate \
            else None
        age = rng.randint(18, 22) if rng.random() < 0.5 else None
        out.append(make_ad(
            kind="legal", network=None, link=None, trafficking=False, region=region, city=city,
            posted=when(rng.randint(0, cfg.days - 1)), template=None, phone=new_phone(region),
            form=phone_form(cfg.disguise_rate / 4), plants=plants_for(cfg.legal_indicator_rate),
            movement=movement, age=age, extra_contact=None, pdq=(), name=rng.choice(_NAMES),
        ))
    out.sort(key=lambda s: (s.ad.posted_at or cfg.start, s.ad.ad_id))
    return out


def same_network_pairs(ads: Sequence[SyntheticAd]) -> set[tuple[str, str]]:
    """The true same-network pairs ``(ad_id_a, ad_id_b)`` with ``a < b``."""
    by: dict[str, list[str]] = {}
    for s in ads:
        if s.network is not None:
            by.setdefault(s.network, []).append(s.ad.ad_id)
    out = set()
    for ids in by.values():
        ids.sort()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                out.add((a, b))
    return out
