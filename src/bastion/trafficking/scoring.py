"""The indicator scorer: a score in [0, 1] for an ad, always with the indicators behind it.

Model: logistic regression over the *presence* of lexicon entries,
``score = logistic(intercept + sum(weight_e for every entry e present in the ad))``, where an
entry counts once however often it occurs (repetition is cheap for an advertiser and should not
move the score). Entries with weight ``<= 0`` (movement language, stated age under 23, client
screening; see the lexicon's sources) are still reported, so a reviewer sees they were
considered. The result is deterministic for the same text, contacts and lexicon version; the
score is rounded to 6 decimals so that it prints identically everywhere.

Source of the features: Lugo-Graulich et al. (2024), Journal of Human Trafficking,
doi:10.1080/23322705.2024.2349447 (the four validated indicators) and the glossaries cited in
the lexicon file. Weights can be refitted on a platform's own labels (:mod:`.fit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bastion.trafficking.lexicon import Lexicon
from bastion.trafficking.schemas import Contact, Indicator, logistic


@dataclass(frozen=True, slots=True)
class Score:
    """``score`` in [0, 1], the ``indicators`` found (sorted by field, span, id), the
    ``lexicon_version`` and the log-odds ``logit`` before the logistic function."""

    score: float
    indicators: tuple[Indicator, ...]
    lexicon_version: str
    logit: float


def present_entries(indicators: Sequence[Indicator]) -> list[str]:
    """The distinct entry ids among ``indicators``, sorted."""
    return sorted({i.id for i in indicators})


def score_indicators(indicators: Sequence[Indicator], lexicon: Lexicon) -> Score:
    """Score already-found indicators with ``lexicon``'s intercept and weights."""
    weights = {e.id: e.weight for e in lexicon.entries}
    logit = lexicon.intercept + sum(weights[i] for i in present_entries(indicators))
    ordered = tuple(sorted(indicators, key=lambda i: (i.field != "text", i.span, i.id)))
    return Score(round(logistic(logit), 6), ordered, lexicon.version, round(logit, 6))


def score_text(
    text: str,
    lexicon: Lexicon,
    contacts: Sequence[Contact] = (),
    *,
    title: str | None = None,
) -> Score:
    """Find ``lexicon``'s entries in ``text`` (and ``title``) and score the ad.

    ``contacts`` are the ad's contacts from :func:`bastion.trafficking.contacts
    .extract_contacts` (with ``field`` set), used by ``contact`` entries (obscured phone).
    """
    found = lexicon.find(text, contacts, field="text")
    if title:
        found += lexicon.find(title, contacts, field="title")
    return score_indicators(found, lexicon)
