"""The trafficking service: analyse one ad (contacts, indicators, score) and feed networks.

Small typed functions that adapters (CLI now; API and review UI later) call:

- :func:`analyse_ad` — contacts of ``text`` and ``title`` (region from the ad's location,
  else ``default_region``), lexicon indicators, score: an :class:`AdResult` without network;
- :func:`network_ad` — the part of an analysed ad that :class:`AdNetworks` links on;
- :func:`photo_hashes` — PDQ hashes of an ad's image files, decoded with Bastion's image
  decoder and its limits; files that cannot be hashed are reported, never skipped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bastion.config import Limits
from bastion.errors import BastionError
from bastion.signals.base import MIN_MATCH_QUALITY
from bastion.signals.image import decode_image
from bastion.signals.pdq import pdq_hash
from bastion.trafficking.contacts import DEFAULT_REGION, extract_contacts, region_for_location
from bastion.trafficking.lexicon import Lexicon
from bastion.trafficking.networks import NetworkAd
from bastion.trafficking.schemas import Ad, AdResult
from bastion.trafficking.scoring import present_entries, score_text


def analyse_ad(ad: Ad, lexicon: Lexicon, *, default_region: str = DEFAULT_REGION) -> AdResult:
    """Contacts, indicators and score of one ad (deterministic for the same ad and lexicon
    version). Raises InvalidInput for an unknown ``default_region`` and LimitExceeded for a
    text with more URLs than the URL extractor accepts."""
    region = region_for_location(ad.location, default_region)
    contacts = extract_contacts(ad.text, region=region, default_region=default_region)
    if ad.title:
        contacts += extract_contacts(ad.title, region=region, default_region=default_region,
                                     field="title")
    scored = score_text(ad.text, lexicon, contacts, title=ad.title)
    return AdResult(
        ad_id=ad.ad_id,
        score=scored.score,
        indicators=scored.indicators,
        contacts=tuple(contacts),
        lexicon_version=scored.lexicon_version,
    )


def network_ad(ad: Ad, result: AdResult) -> NetworkAd:
    """What :class:`~bastion.trafficking.networks.AdNetworks` links on, from an analysed ad."""
    contacts = tuple(dict.fromkeys((c.kind, c.value) for c in result.contacts))
    return NetworkAd(
        ad_id=ad.ad_id,
        text=ad.text if not ad.title else f"{ad.title}\n{ad.text}",
        contacts=contacts,
        pdq=ad.pdq,
        location=ad.location,
        posted_at=ad.posted_at,
        indicator_ids=tuple(present_entries(result.indicators)),
        score=result.score,
    )


@dataclass(frozen=True, slots=True)
class PhotoProblem:
    """An image of an ad that was not hashed, with the reason (``not_scanned``)."""

    path: str
    reason: str


def photo_hashes(
    paths: Sequence[str], *, base_dir: Path, limits: Limits | None = None
) -> tuple[list[str], list[PhotoProblem]]:
    """PDQ hashes (64 hex) of the image files ``paths`` (relative ones under ``base_dir``).

    Decoded in this process with :func:`bastion.signals.image.decode_image` and its limits
    (bytes, pixels). Returns the hashes and the images not hashed with a reason: unreadable,
    not an image, over a limit, or quality below 50 (Meta's PDQ recommendation: such hashes
    are not matched).
    """
    lim = limits or Limits()
    hashes: list[str] = []
    problems: list[PhotoProblem] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_absolute():
            path = base_dir / path
        try:
            if path.stat().st_size > lim.max_file_bytes:
                problems.append(PhotoProblem(raw, "file over the size limit"))
                continue
            data = path.read_bytes()
            decoded = decode_image(data, limits=lim)
            h = pdq_hash(decoded.stored)
        except OSError as exc:
            problems.append(PhotoProblem(raw, f"cannot read: {exc.strerror or exc}"))
            continue
        except BastionError as exc:
            problems.append(PhotoProblem(raw, exc.message))
            continue
        if h.quality < MIN_MATCH_QUALITY:
            problems.append(PhotoProblem(raw, f"PDQ quality {h.quality} below 50"))
            continue
        hashes.append(h.value)
    return hashes, problems


def with_photos(ad: Ad, hashes: Sequence[str]) -> Ad:
    """``ad`` with ``hashes`` added to its PDQ hashes (duplicates dropped, order kept)."""
    return replace(ad, pdq=tuple(dict.fromkeys((*ad.pdq, *hashes))))
