"""Refit the lexicon's weights on a platform's own labelled ads (logistic regression).

Input: JSON lines, one ad per line with ``text`` (optional ``title``, ``location``) and
``label`` (1 = trafficking, 0 = not; ``true``/``false`` accepted). Features: the presence
(0/1) of each lexicon entry, found exactly as the scorer finds them (so the fitted weights mean
what the scorer uses them for). Model: L2-regularised logistic regression
(``sklearn.linear_model.LogisticRegression``, lbfgs, ``C`` = inverse regularisation strength),
which is the scorer's model; the fitted intercept and coefficients replace the lexicon's.

Entries with evidence ``not-predictive`` keep weights ``<= 0`` (a fitted positive weight is
clipped to 0 and reported), so that a platform's small sample cannot turn movement language
back into a red flag without someone changing the lexicon on purpose. Entries that never occur
in the data keep their prior weights (reported as ``unseen``).

scikit-learn is an optional dependency (``pip install 'bastion[ads]'``); without it
:func:`fit_lexicon` raises :class:`~bastion.errors.ConfigurationError` saying so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.errors import ConfigurationError, InvalidInput, LimitExceeded
from bastion.trafficking.contacts import DEFAULT_REGION
from bastion.trafficking.lexicon import Lexicon
from bastion.trafficking.schemas import Ad
from bastion.trafficking.service import analyse_ad

#: Labelled ads per fit.
MAX_EXAMPLES = 1_000_000
#: Fewest examples of each class.
MIN_PER_CLASS = 10


@dataclass(frozen=True, slots=True)
class LabelledAd:
    """One training example: the ad and its label (True = trafficking)."""

    ad: Ad
    label: bool


@dataclass(frozen=True, slots=True)
class FitReport:
    """The fitted lexicon and what changed: ``weights`` maps entry id to (prior, fitted);
    ``clipped`` not-predictive entries held at 0; ``unseen`` entries absent from the data."""

    lexicon: Lexicon
    examples: int
    positives: int
    weights: dict[str, tuple[float, float]]
    intercept: tuple[float, float]
    clipped: tuple[str, ...]
    unseen: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"version", "examples", "positives", "intercept", "weights", "clipped",
        "unseen"}`` with ``weights`` as ``{id: {"prior", "fitted"}}``."""
        return {
            "version": self.lexicon.version,
            "examples": self.examples,
            "positives": self.positives,
            "intercept": {"prior": self.intercept[0], "fitted": self.intercept[1]},
            "weights": {k: {"prior": p, "fitted": f} for k, (p, f) in self.weights.items()},
            "clipped": list(self.clipped),
            "unseen": list(self.unseen),
        }


def parse_labelled(lines: Iterable[str]) -> tuple[list[LabelledAd], list[tuple[int, str]]]:
    """Parse labelled JSON lines: the examples, and ``(line number, reason)`` for lines that
    could not be read (the rest are still parsed). Raises LimitExceeded past
    :data:`MAX_EXAMPLES`."""
    out: list[LabelledAd] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(out) >= MAX_EXAMPLES:
            raise LimitExceeded(f"more than {MAX_EXAMPLES} labelled ads")
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise InvalidInput("not a JSON object")
            label = obj.get("label")
            if label not in (0, 1, True, False):
                raise InvalidInput("'label' must be 0/1 or true/false")
            obj.setdefault("ad_id", f"line-{n}")
            out.append(LabelledAd(Ad.from_json(obj), bool(label)))
        except ValueError as exc:
            bad.append((n, f"not JSON: {exc}"))
        except InvalidInput as exc:
            bad.append((n, exc.message))
    return out, bad


def fit_lexicon(
    examples: Sequence[LabelledAd],
    lexicon: Lexicon,
    *,
    c: float = 1.0,
    default_region: str = DEFAULT_REGION,
) -> FitReport:
    """Fit the weights of ``lexicon`` on ``examples`` (see the module docstring).

    The new version is ``<old version>+fit.<12 hex of a digest of the data and C>``.
    Raises ConfigurationError without scikit-learn, InvalidInput with fewer than
    :data:`MIN_PER_CLASS` examples of either class or ``c <= 0``.
    """
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigurationError(
            "bastion ads fit needs scikit-learn: pip install 'bastion[ads]'"
        ) from exc
    if c <= 0:
        raise InvalidInput("C must be positive")
    positives = sum(1 for e in examples if e.label)
    negatives = len(examples) - positives
    if positives < MIN_PER_CLASS or negatives < MIN_PER_CLASS:
        raise InvalidInput(
            f"need at least {MIN_PER_CLASS} ads of each label, got {positives} positive "
            f"and {negatives} negative"
        )
    ids = [e.id for e in lexicon.entries]
    col = {k: i for i, k in enumerate(ids)}
    x = np.zeros((len(examples), len(ids)), dtype=np.float64)
    y = np.zeros(len(examples), dtype=np.int64)
    digest = hashlib.sha256(f"{lexicon.version}|{c}".encode())
    for r, ex in enumerate(examples):
        res = analyse_ad(ex.ad, lexicon, default_region=default_region)
        for i in res.indicators:
            x[r, col[i.id]] = 1.0
        y[r] = int(ex.label)
        digest.update(json.dumps([ex.ad.text, ex.ad.title, ex.ad.location, ex.label])
                      .encode())
    seen: list[bool] = np.asarray(x.any(axis=0)).astype(bool).tolist()
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=1000)
    model.fit(x[:, seen], y)
    fitted = dict(zip([k for k, s in zip(ids, seen, strict=True) if s],
                      (float(w) for w in model.coef_[0]), strict=True))
    clipped = []
    for e in lexicon.entries:
        if e.id in fitted and e.evidence == "not-predictive" and fitted[e.id] > 0:
            fitted[e.id] = 0.0
            clipped.append(e.id)
    fitted = {k: round(v, 6) for k, v in fitted.items()}
    intercept = round(float(model.intercept_[0]), 6)
    version = f"{lexicon.version}+fit.{digest.hexdigest()[:12]}"
    new = lexicon.with_weights(version, intercept, fitted)
    weights = {e.id: (e.weight, new.entry(e.id).weight) for e in lexicon.entries}
    return FitReport(
        lexicon=new,
        examples=len(examples),
        positives=positives,
        weights=weights,
        intercept=(lexicon.intercept, intercept),
        clipped=tuple(clipped),
        unseen=tuple(k for k, s in zip(ids, seen, strict=True) if not s),
    )
