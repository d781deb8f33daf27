"""Ad networks: ads linked by a shared contact, photo or near-duplicate text, kept incrementally.

Links (each symmetric, between two ads):

- **contact**: the same phone (E.164), e-mail address or handle value;
- **photo**: two PDQ hashes within :data:`~bastion.index.pdq.DEFAULT_THRESHOLD` (31) bits,
  Meta's recommended threshold, searched exactly with :class:`bastion.index.pdq.PdqIndex`
  (all-zero/all-one hashes of featureless pictures never link);
- **text**: word 3-shingles (casefolded ``\\w+`` tokens), MinHash (128 hash functions,
  :class:`~bastion.trafficking.minhash.MinHasher`) into a banded LSH index
  (:class:`~bastion.trafficking.minhash.BandIndex`, 32 bands of 4 rows: a pair is a
  candidate with probability 1 - (1 - J^4)^32, i.e. 0.87 at Jaccard 0.5, 0.99 at 0.6,
  0.05 at 0.2, so unrelated ads rarely need verifying); an LSH candidate whose MinHash
  agreement is not clearly below the threshold (:data:`SIGNATURE_MARGIN`) is verified by the
  exact Jaccard similarity of the two shingle sets (``>= text_threshold``). Ads with fewer
  than ``min_shingles`` shingles are not text-linked
  (short texts collide by chance). Source: Broder (1997), "On the resemblance and containment
  of documents"; Leskovec, Rajaraman, Ullman, *Mining of Massive Datasets*, ch. 3 (banding).

Crowded buckets: ads that share common wording (boilerplate, stock phrases) fill some LSH
buckets with ever more ads, so without a bound the candidates per new ad grow with the store
(about 10 per ad at 6,000 synthetic ads, 105 at 54,000) and so does the cost of linking. A
query takes from each of its 32 buckets only the :data:`BUCKET_RECENT` (16) ads most recently
added to it, at most 512 candidates, whatever the store size. Why recent ones: a near-duplicate
campaign keeps posting, so a new ad of it finds earlier ones of the same campaign among the
latest entries of its buckets, and one verified link to any member joins the whole network
(buckets of a campaign's own wording hold mostly its own ads). What it costs: a pair whose
only shared buckets each held more than 16 younger ads when the second ad arrived is not
compared; every link made is still verified by the exact Jaccard similarity, so the bound can
miss a link (recall) but never makes a false one. Order: which ads are "most recent" depends on
the arrival order, so links are no longer a property of the pair alone; the same arrival order
gives the same networks whether ads are added one at a time or in batches (:meth:`add_many`
takes, per bucket, the latest ads *before* each ad), which is what the store does when it
replays ads in row order. Replaying after deleting ads only widens the window of later ads (the
deleted ad no longer occupies it), so links among the remaining ads are kept or gained, never
lost. ``bucket_recent`` raises the bound; a value above the store size gives the unbounded
pair-only behaviour.

Connected components of the link graph are networks, kept with a union-find (union by size,
path halving): a new ad costs one lookup per contact, one PDQ range search and one LSH query,
never a recomputation. A network's id is ``net-<n>`` where ``n`` is the key of its oldest
(first added) ad: :attr:`NetworkAd.key` when given (the store gives its row id, so ids stay
the same when ads are later deleted and the rest replayed), else its arrival number. When two
networks merge, the older id survives and the younger one is recorded in
:attr:`AdNetworks.merged_into` (:meth:`AdNetworks.resolve` follows it). Every link depends
only on the two ads and, through the bucket bound, on the order of the ads before them, so
adding ads one at a time (:meth:`AdNetworks.add`) and in batches (:meth:`AdNetworks.add_many`)
in the same order gives the same networks with the same ids.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.index.pdq import DEFAULT_THRESHOLD, PdqIndex
from bastion.trafficking.minhash import BandIndex, MinHasher
from bastion.trafficking.schemas import format_time
from bastion.trafficking.template import Template, build_template

LinkKind = Literal["phone", "email", "handle", "photo", "text"]
#: Contact kinds that link ads (URLs do not: shared hosts and link shorteners over-link).
LINKING_KINDS = ("phone", "email", "handle")
#: Word shingle length for near-duplicate text.
SHINGLE_WORDS = 3
#: MinHash permutations.
NUM_PERM = 128
#: Links recorded per new ad and kind (for display; networks use every link).
MAX_LINKS_PER_KIND = 4
#: LSH candidates whose MinHash agreement is this far below ``text_threshold`` are not
#: verified exactly: the agreement of 128 values has a standard deviation of at most 0.045,
#: so a pair at the threshold falls this low with probability below 1e-7.
SIGNATURE_MARGIN = 0.25
#: Signature values compared first when an ad has many LSH candidates: a candidate with too
#: few agreements among them is dropped before the full comparison. The bound is the largest
#: whose miss probability for a pair at ``text_threshold`` is below :data:`PREFILTER_MISS`
#: (binomial; 2 of 32 at a threshold of 0.5, missing 7.7e-9); 0 disables the first step.
PREFILTER_VALUES = 32
PREFILTER_MISS = 1e-7
#: LSH candidates taken per band bucket: the ads most recently added to it (before the new
#: ad). See the module docstring ("Crowded buckets").
BUCKET_RECENT = 16

_WORD_RE = re.compile(r"\w+")
_FEATURELESS = ("0" * 64, "f" * 64)


@dataclass(frozen=True, slots=True)
class NetworkAd:
    """What linking needs from one analysed ad.

    ``contacts`` are ``(kind, value)`` pairs (E.164 for phones); ``pdq`` 64-hex hashes;
    ``indicator_ids`` the lexicon entries present; ``score`` in [0, 1].
    """

    ad_id: str
    text: str
    contacts: tuple[tuple[str, str], ...] = ()
    pdq: tuple[str, ...] = ()
    location: str | None = None
    posted_at: datetime | None = None
    indicator_ids: tuple[str, ...] = ()
    score: float = 0.0
    #: A stable positive number naming the ad for network ids (its row id in the store);
    #: 0: its arrival number in these networks.
    key: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """Why two ads are in one network: ``kind`` and ``detail`` (the shared contact value, the
    PDQ distance in bits, or the Jaccard similarity of the texts)."""

    a: str
    b: str
    kind: LinkKind
    detail: str

    def to_json(self) -> dict[str, Any]:
        """``{"a", "b", "kind", "detail"}``."""
        return {"a": self.a, "b": self.b, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Stay:
    """Consecutive ads of a network in one city: ``city``, first and last time, ad count."""

    city: str
    first_seen: datetime | None
    last_seen: datetime | None
    ads: int

    def to_json(self) -> dict[str, Any]:
        """``{"city", "first_seen", "last_seen", "ads"}`` (times RFC 3339 UTC)."""
        return {
            "city": self.city,
            "first_seen": None if self.first_seen is None else format_time(self.first_seen),
            "last_seen": None if self.last_seen is None else format_time(self.last_seen),
            "ads": self.ads,
        }


@dataclass(frozen=True, slots=True)
class Network:
    """One network's summary (issue 8): ``ad_ids`` in posting order, distinct ``contacts``
    (``(kind, value, ads)``), ``cities`` in order of first appearance, first/last seen,
    ``movement`` (stays in posting order), ``template`` (None below two ads with text),
    ``indicators`` (entry id -> number of ads with it), score statistics and ``links``."""

    network_id: str
    ad_ids: tuple[str, ...]
    contacts: tuple[tuple[str, str, int], ...]
    cities: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    movement: tuple[Stay, ...]
    template: Template | None
    indicators: dict[str, int]
    max_score: float
    mean_score: float
    links: tuple[Link, ...] = field(default=())
    merged_ids: tuple[str, ...] = field(default=())

    @property
    def days(self) -> float:
        """Days from the first to the last posting (0.0 without posting times)."""
        return span_days(self.first_seen, self.last_seen)

    def to_json(self) -> dict[str, Any]:
        """The ``bastion ads networks --json`` object."""
        return {
            "network_id": self.network_id,
            "ad_ids": list(self.ad_ids),
            "size": len(self.ad_ids),
            "contacts": [{"kind": k, "value": v, "ads": n} for k, v, n in self.contacts],
            "cities": list(self.cities),
            "first_seen": None if self.first_seen is None else format_time(self.first_seen),
            "last_seen": None if self.last_seen is None else format_time(self.last_seen),
            "days": self.days,
            "movement": [s.to_json() for s in self.movement],
            "template": None if self.template is None else self.template.to_json(),
            "indicators": dict(sorted(self.indicators.items())),
            "max_score": self.max_score,
            "mean_score": self.mean_score,
            "links": [lk.to_json() for lk in self.links],
            "merged_ids": list(self.merged_ids),
        }


def _prefilter_bound(p: float, n: int = PREFILTER_VALUES, miss: float = PREFILTER_MISS) -> int:
    """The largest ``m`` with ``P(Binomial(n, p) < m) < miss`` (0 when none)."""
    m, below = 0, 0.0
    while m < n:
        below += math.comb(n, m) * p**m * (1 - p) ** (n - m)
        if below >= miss:
            return m
        m += 1
    return m


def span_days(first: datetime | None, last: datetime | None) -> float:
    """Days (rounded to 1e-3) from ``first`` to ``last``; 0.0 when either is None."""
    if first is None or last is None:
        return 0.0
    return round(max(0.0, (last - first).total_seconds()) / 86_400.0, 3)


@dataclass(frozen=True, slots=True)
class Spread:
    """How far a network reaches: ``ads``, distinct ``cities`` (casefolded; ads without a
    location not counted) and ``days`` from its first to its last posting (0.0 when fewer
    than two ads have a posting time). What the policy's ``ads_network_*`` values read."""

    ads: int
    cities: int
    days: float


@dataclass(frozen=True, slots=True)
class Overview:
    """One line of the network list: ``size``, ``cities`` (in order of first posting),
    first/last seen, ``top_indicators`` (``(entry id, ads with it)``, most common first, at
    most :data:`TOP_INDICATORS`), ``max_score`` and ``seq`` (the arrival number of its
    oldest ad, for a stable order). Cheap: no template, no links."""

    network_id: str
    size: int
    cities: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    top_indicators: tuple[tuple[str, int], ...]
    max_score: float
    seq: int

    @property
    def days(self) -> float:
        """Days from the first to the last posting."""
        return span_days(self.first_seen, self.last_seen)


#: Indicators shown per network in :meth:`AdNetworks.overview`.
TOP_INDICATORS = 3


#: Words whose CRC-32 is cached (the cache is emptied when it is full).
_WORD_CACHE_SIZE = 1 << 17
_word_crc: dict[str, int] = {}
#: Odd 64-bit multipliers combining the words of a shingle (positions differ).
_GRAM_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53],
                     dtype=np.uint64)


def _crc_of_words(words: list[str]) -> npt.NDArray[np.uint64]:
    cache = _word_crc
    if len(cache) > _WORD_CACHE_SIZE:
        cache.clear()
    out = np.empty(len(words), np.uint64)
    for i, w in enumerate(words):
        c = cache.get(w)
        if c is None:
            c = cache[w] = zlib.crc32(w.encode())
        out[i] = c
    return out


def shingle_hashes(text: str, k: int = SHINGLE_WORDS) -> npt.NDArray[np.uint32]:
    """Sorted distinct 32-bit hashes of the word ``k``-shingles (``k`` <= 6) of ``text``
    (casefolded ``\\w+`` tokens); a text of fewer than ``k`` words gives one shingle of all
    its words. A shingle's hash is the top 32 bits of ``sum(crc32(word_i) * m_i) mod 2**64``
    over its words with fixed odd multipliers ``m_i`` (word CRCs cached, one vectorised pass
    per text). Raises InvalidInput for ``k`` out of range."""
    if not 1 <= k <= len(_GRAM_MIX):
        raise InvalidInput(f"shingle length must be 1-{len(_GRAM_MIX)} words")
    words = _WORD_RE.findall(text.casefold())
    if not words:
        return np.zeros(0, np.uint32)
    crc = _crc_of_words(words)
    k = min(k, len(words))
    n = len(words) - k + 1
    acc = crc[:n] * _GRAM_MIX[0]
    for i in range(1, k):
        acc += crc[i : i + n] * _GRAM_MIX[i]
    out: npt.NDArray[np.uint32] = np.unique((acc >> np.uint64(32)).astype(np.uint32))
    return out


def jaccard(a: npt.NDArray[np.uint32], b: npt.NDArray[np.uint32]) -> float:
    """Jaccard similarity of two sorted distinct arrays (0.0 when both are empty)."""
    if a.size == 0 and b.size == 0:
        return 0.0
    if a.size > b.size:
        a, b = b, a
    if a.size == 0:
        return 0.0
    at = np.searchsorted(b, a)
    at[at == b.size] = 0
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (a.size + b.size - inter)


class AdNetworks:
    """Incremental ad networks (see the module docstring).

    Args:
        pdq_threshold: Hamming bits (inclusive) within which two photos link; default 31.
        text_threshold: Jaccard similarity of word 3-shingle sets at or above which two
            texts link (verified exactly after the LSH).
        lsh_bands: ``(bands, rows)`` of the LSH; ``bands * rows`` must be :data:`NUM_PERM`.
        min_shingles: texts with fewer distinct shingles are not text-linked.
        keep_text: keep ad texts in memory for templates (``False`` saves memory;
            templates are then None).
        bucket_recent: LSH candidates taken per band bucket (the most recently added ads
            in it); default :data:`BUCKET_RECENT`.

    Raises InvalidInput for thresholds out of range, Conflict for an ``ad_id`` or a ``key``
    added twice.
    """

    def __init__(
        self,
        *,
        pdq_threshold: int = DEFAULT_THRESHOLD,
        text_threshold: float = 0.5,
        lsh_bands: tuple[int, int] = (32, 4),
        min_shingles: int = 8,
        keep_text: bool = True,
        bucket_recent: int = BUCKET_RECENT,
    ) -> None:
        if not 0 <= pdq_threshold <= 256:
            raise InvalidInput("pdq_threshold must be 0-256 bits")
        if not 0.0 < text_threshold <= 1.0:
            raise InvalidInput("text_threshold must be in (0, 1]")
        if lsh_bands[0] < 1 or lsh_bands[1] < 1 or lsh_bands[0] * lsh_bands[1] > NUM_PERM:
            raise InvalidInput(f"lsh_bands must multiply to at most {NUM_PERM}")
        self.pdq_threshold = pdq_threshold
        self.text_threshold = text_threshold
        self.min_shingles = min_shingles
        # signature values (of NUM_PERM) that must agree before a candidate is verified
        self._min_agree = math.ceil((text_threshold - SIGNATURE_MARGIN) * NUM_PERM - 1e-9)
        self._prefilter_min = _prefilter_bound(text_threshold)
        self.keep_text = keep_text
        if bucket_recent < 1:
            raise InvalidInput("bucket_recent must be positive")
        self.bucket_recent = bucket_recent
        self._lsh = BandIndex(*lsh_bands)
        self._hasher = MinHasher(NUM_PERM, seed=1)
        self._pdq = PdqIndex(pdq_threshold)
        self._photo_owner: list[int] = []
        self._ads: list[NetworkAd] = []
        self._seq_of: dict[str, int] = {}
        self._shingles: list[npt.NDArray[np.uint32] | None] = []
        # low 8 bits of each ad's MinHash signature (row = arrival number), to skip exact
        # verification of candidates that clearly differ (SIGNATURE_MARGIN); values of two
        # different minima agree by chance with probability 1/256, which only raises the
        # agreement, so the shortcut never drops a pair that 64-bit values would keep
        self._sig8: npt.NDArray[np.uint8] = np.zeros((1024, NUM_PERM), np.uint8)
        self._contact_first: dict[tuple[str, str], int] = {}
        self._parent: list[int] = []
        self._size: list[int] = []
        self._members: dict[int, list[int]] = {}
        self._oldest: dict[int, int] = {}
        self._key: list[int] = []  # per arrival number: the number in network ids
        self._seq_of_key: dict[int, int] = {}
        self._links: dict[int, list[Link]] = {}
        #: Retired network id -> the id it merged into (the older one).
        self.merged_into: dict[str, str] = {}

    # -- union-find --

    def _find(self, x: int) -> int:
        parent = self._parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def _net_id(self, root: int) -> str:
        return f"net-{self._key[self._oldest[root]]}"

    def _root_of_id(self, network_id: str) -> int | None:
        m = re.fullmatch(r"net-(\d{1,12})", network_id)
        if m is None:
            return None
        seq = self._seq_of_key.get(int(m.group(1)))
        if seq is None:
            return None
        root = self._find(seq)
        return root if self._oldest[root] == seq else None

    def _union(self, a: int, b: int, current: int = -1) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        id_a, id_b = self._net_id(ra), self._net_id(rb)
        oldest_a, oldest_b = self._oldest[ra], self._oldest[rb]
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]
        self._members[ra].extend(self._members.pop(rb))
        self._oldest[ra] = min(self._oldest[ra], self._oldest.pop(rb))
        self._links.setdefault(ra, []).extend(self._links.pop(rb, []))
        old, young = (id_a, id_b) if oldest_a < oldest_b else (id_b, id_a)
        if max(oldest_a, oldest_b) != current:  # an ad joining is not a merge of networks
            self.merged_into[young] = old

    # -- adding --

    def __len__(self) -> int:
        return len(self._ads)

    def __contains__(self, ad_id: object) -> bool:
        return ad_id in self._seq_of

    def _register(self, ad: NetworkAd) -> int:
        if ad.ad_id in self._seq_of:
            raise Conflict(f"ad {ad.ad_id!r} is already in the networks")
        seq = len(self._ads)
        key = ad.key if ad.key > 0 else seq + 1
        if key in self._seq_of_key:
            raise Conflict(f"network key {key} of ad {ad.ad_id!r} is already used")
        self._seq_of[ad.ad_id] = seq
        self._seq_of_key[key] = seq
        self._key.append(key)
        self._ads.append(ad if self.keep_text else _without_text(ad))
        self._parent.append(seq)
        self._size.append(1)
        self._members[seq] = [seq]
        self._oldest[seq] = seq
        return seq

    def _text_of(self, ad: NetworkAd, seq: int) -> tuple[npt.NDArray[np.uint32] | None,
                                                         npt.NDArray[np.uint64] | None]:
        sh = shingle_hashes(ad.text)
        if sh.size < self.min_shingles:
            self._shingles.append(None)
            return None, None
        self._shingles.append(sh)
        sig = self._hasher.signature(sh)
        if seq >= self._sig8.shape[0]:
            grown = np.zeros((max(seq + 1, 2 * self._sig8.shape[0]), NUM_PERM), np.uint8)
            grown[: self._sig8.shape[0]] = self._sig8
            self._sig8 = grown
        self._sig8[seq] = sig.astype(np.uint8)
        return sh, self._lsh.keys(sig)

    def _contact_links(self, seq: int, ad: NetworkAd) -> list[tuple[int, LinkKind, str]]:
        out: list[tuple[int, LinkKind, str]] = []
        for kind, value in ad.contacts:
            if kind not in LINKING_KINDS:
                continue
            key = (kind, value)
            first = self._contact_first.setdefault(key, seq)
            if first != seq:
                out.append((first, kind, value))  # type: ignore[arg-type]
        return out

    def _photo_hashes(self, ad: NetworkAd) -> list[str]:
        return [h for h in dict.fromkeys(ad.pdq) if h not in _FEATURELESS]

    def _record(self, seq: int, links: Iterable[tuple[int, LinkKind, str]]) -> None:
        per_kind: Counter[str] = Counter()
        seen: set[tuple[int, str]] = set()
        for other, kind, detail in sorted(links, key=lambda t: (t[1], t[0], t[2])):
            if other == seq or (other, kind) in seen:
                continue
            seen.add((other, kind))
            self._union(seq, other, current=seq)
            if per_kind[kind] < MAX_LINKS_PER_KIND:
                per_kind[kind] += 1
                lk = Link(self._ads[other].ad_id, self._ads[seq].ad_id, kind, detail)
                self._links.setdefault(self._find(seq), []).append(lk)

    def add(self, ad: NetworkAd) -> str:
        """Link one ad and return its network id. Raises Conflict for a repeated ad_id."""
        seq = self._register(ad)
        links = self._contact_links(seq, ad)
        hashes = self._photo_hashes(ad)
        if hashes:
            for qi, photo, dist in self._pdq.search(hashes, self.pdq_threshold).tolist():
                del qi
                links.append((self._photo_owner[photo], "photo", str(dist)))
            base = len(self._photo_owner)
            self._pdq.add(list(range(base, base + len(hashes))), hashes)
            self._photo_owner.extend([seq] * len(hashes))
        sh, mh = self._text_of(ad, seq)
        if sh is not None and mh is not None:
            cands = self._lsh.query_recent(mh, self.bucket_recent)
            links.extend(self._verified_text_links(seq, sh, cands))
            self._lsh.insert(seq, mh)
        self._record(seq, links)
        return self._net_id(self._find(seq))

    def _verified_text_links(
        self, seq: int, sh: npt.NDArray[np.uint32], cands: npt.NDArray[np.int64]
    ) -> list[tuple[int, LinkKind, str]]:
        if cands.size > 4:
            mine = self._sig8[seq]
            if cands.size > 64 and self._prefilter_min:
                first = self._sig8[cands, :PREFILTER_VALUES]
                agree = np.count_nonzero(first == mine[:PREFILTER_VALUES], axis=1)
                cands = cands[agree >= self._prefilter_min]
            agree = np.count_nonzero(self._sig8[cands] == mine, axis=1)
            cands = cands[agree >= self._min_agree]
        others: list[int] = []
        arrays: list[npt.NDArray[np.uint32]] = []
        for other in cands.tolist():
            osh = self._shingles[other] if other != seq else None
            if osh is not None and osh.size:
                others.append(other)
                arrays.append(osh)
        if not others or sh.size == 0:
            return []
        # every candidate at once: each of its shingles looked up in the new ad's sorted set
        sizes = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
        flat = np.concatenate(arrays)
        at = np.searchsorted(sh, flat)
        at[at == sh.size] = 0
        hits = (sh[at] == flat).astype(np.int64)
        starts = np.zeros(len(arrays), np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        inter = np.add.reduceat(hits, starts)
        out: list[tuple[int, LinkKind, str]] = []
        for other, i, size in zip(others, inter.tolist(), sizes.tolist(), strict=True):
            j = i / (sh.size + size - i)
            if j >= self.text_threshold:
                out.append((other, "text", f"{j:.2f}"))
        return out

    def add_many(self, ads: Sequence[NetworkAd]) -> list[str]:
        """Link a batch of ads (photos searched in one pass, LSH filled before it is queried) and
        return their network ids, in order. Same networks as adding them one at a time."""
        seqs = [self._register(ad) for ad in ads]
        links: dict[int, list[tuple[int, LinkKind, str]]] = {s: [] for s in seqs}
        for seq, ad in zip(seqs, ads, strict=True):
            links[seq].extend(self._contact_links(seq, ad))
        # photos: add all, then one search; each pair once, attributed to the younger ad
        q_hashes: list[str] = []
        q_owner: list[int] = []
        for seq, ad in zip(seqs, ads, strict=True):
            for h in self._photo_hashes(ad):
                q_hashes.append(h)
                q_owner.append(seq)
        if q_hashes:
            base = len(self._photo_owner)
            self._pdq.add(list(range(base, base + len(q_hashes))), q_hashes)
            self._photo_owner.extend(q_owner)
            for qi, photo, dist in self._pdq.search(q_hashes, self.pdq_threshold).tolist():
                a, b = q_owner[qi], self._photo_owner[photo]
                if a != b:
                    links[max(a, b)].append((min(a, b), "photo", str(dist)))
        # text: one insertion session, then queries
        mhs: list[tuple[int, npt.NDArray[np.uint32], npt.NDArray[np.uint64]]] = []
        for seq, ad in zip(seqs, ads, strict=True):
            sh, mh = self._text_of(ad, seq)
            if sh is not None and mh is not None:
                mhs.append((seq, sh, mh))
        for seq, _, mh in mhs:
            self._lsh.insert(seq, mh)
        for seq, sh, mh in mhs:
            cands = self._lsh.query_recent(mh, self.bucket_recent, before=seq)
            links[seq].extend(self._verified_text_links(seq, sh, cands))
        for seq in seqs:
            self._record(seq, links[seq])
        return [self._net_id(self._find(s)) for s in seqs]

    # -- reading --

    def resolve(self, network_id: str) -> str:
        """The current id of a network (following merges). Raises NotFound if unknown."""
        hops = 0
        while network_id in self.merged_into and hops <= len(self.merged_into):
            network_id = self.merged_into[network_id]
            hops += 1
        if self._root_of_id(network_id) is None:
            raise NotFound(f"no network {network_id!r}")
        return network_id

    def network_of(self, ad_id: str) -> str:
        """The network id of an ad. Raises NotFound for an unknown ad."""
        seq = self._seq_of.get(ad_id)
        if seq is None:
            raise NotFound(f"no ad {ad_id!r}")
        return self._net_id(self._find(seq))

    def partition(self) -> list[frozenset[str]]:
        """Every network's set of ad ids (singletons included), ordered by network id."""
        out = []
        for root in sorted(self._members, key=lambda r: self._oldest[r]):
            out.append(frozenset(self._ads[s].ad_id for s in self._members[root]))
        return out

    def size_and_cities(self, network_id: str) -> tuple[int, int]:
        """``(ads, distinct cities)`` of a network (see :meth:`spread`). Raises NotFound."""
        sp = self.spread(network_id)
        return sp.ads, sp.cities

    def _root(self, network_id: str) -> int:
        root = self._root_of_id(self.resolve(network_id))
        if root is None:  # pragma: no cover - resolve() checked it
            raise NotFound(f"no network {network_id!r}")
        return root

    def spread(self, network_id: str) -> Spread:
        """Ads, distinct cities and days spanned by a network (merged ids resolved).
        Raises NotFound."""
        members = self._members[self._root(network_id)]
        cities = {(self._ads[s].location or "").strip().casefold() for s in members}
        cities.discard("")
        times = [t for s in members if (t := self._ads[s].posted_at) is not None]
        days = span_days(min(times), max(times)) if times else 0.0
        return Spread(len(members), len(cities), days)

    def members(self, network_id: str) -> list[NetworkAd]:
        """The ads of a network (merged ids resolved) in posting order (ads without a
        posting time last, in arrival order). Texts are empty with ``keep_text=False``.
        Raises NotFound."""
        seqs = sorted(self._members[self._root(network_id)])
        ads = [self._ads[s] for s in seqs]
        order = sorted(range(len(ads)), key=lambda i: _time_key(ads[i], i))
        return [ads[i] for i in order]

    def links_of(self, network_id: str) -> tuple[Link, ...]:
        """The recorded links of a network (at most :data:`MAX_LINKS_PER_KIND` per ad and
        kind when the ad arrived; the network itself uses every link). Raises NotFound."""
        return tuple(self._links.get(self._root(network_id), ()))

    def overview(self, *, min_size: int = 2) -> list[Overview]:
        """A cheap line per network of at least ``min_size`` ads (oldest first): size,
        cities, first/last seen, most common indicators, highest score. O(ads)."""
        out: list[Overview] = []
        for root in sorted(self._members, key=lambda r: self._oldest[r]):
            seqs = self._members[root]
            if len(seqs) < min_size:
                continue
            ads = [self._ads[s] for s in sorted(seqs)]
            ordered = sorted(range(len(ads)), key=lambda i: _time_key(ads[i], i))
            cities: dict[str, str] = {}
            for i in ordered:
                city = (ads[i].location or "").strip()
                if city:
                    cities.setdefault(city.casefold(), city)
            times = [a.posted_at for a in ads if a.posted_at is not None]
            counts: Counter[str] = Counter()
            for a in ads:
                counts.update(set(a.indicator_ids))
            top = tuple(sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:TOP_INDICATORS])
            out.append(Overview(
                self._net_id(root), len(ads), tuple(cities.values()),
                min(times) if times else None, max(times) if times else None, top,
                max(a.score for a in ads), self._oldest[root]))
        return out

    def network_ids(self, *, min_size: int = 1) -> list[str]:
        """Current network ids with at least ``min_size`` ads, oldest first."""
        roots = sorted(self._members, key=lambda r: self._oldest[r])
        return [self._net_id(r) for r in roots if len(self._members[r]) >= min_size]

    def _merged_map(self) -> dict[str, list[str]]:
        rev: dict[str, list[str]] = {}
        for k in self.merged_into:
            rev.setdefault(self.resolve(k), []).append(k)
        for v in rev.values():
            v.sort(key=lambda k: int(k[4:]))
        return rev

    def summary(self, network_id: str, *, template_ads: int = 30,
                _merged: dict[str, list[str]] | None = None) -> Network:
        """The summary of one network (resolving merged ids). The template is aligned over
        at most ``template_ads`` of its ads (the oldest). Raises NotFound."""
        nid = self.resolve(network_id)
        root = self._root_of_id(nid)
        if root is None:  # pragma: no cover - resolve() checked it
            raise NotFound(f"no network {network_id!r}")
        members = [self._ads[s] for s in sorted(self._members[root])]
        merged = (self._merged_map() if _merged is None else _merged).get(nid, [])
        return _summarise(nid, members, self._links.get(root, []), merged,
                          template_ads if self.keep_text else 0)

    def summaries(self, *, min_size: int = 2, template_ads: int = 30) -> list[Network]:
        """Summaries of every network with at least ``min_size`` ads, oldest first."""
        rev = self._merged_map()
        return [self.summary(n, template_ads=template_ads, _merged=rev)
                for n in self.network_ids(min_size=min_size)]


def _without_text(ad: NetworkAd) -> NetworkAd:
    return NetworkAd(ad.ad_id, "", ad.contacts, ad.pdq, ad.location, ad.posted_at,
                     ad.indicator_ids, ad.score, ad.key)


def _time_key(ad: NetworkAd, order: int) -> tuple[float, int]:
    return (ad.posted_at.timestamp() if ad.posted_at is not None else float("inf"), order)


def _summarise(
    nid: str, members: list[NetworkAd], links: list[Link], merged: list[str], template_ads: int
) -> Network:
    ordered = [ad for _, ad in sorted(((_time_key(a, i), a) for i, a in enumerate(members)),
                                      key=lambda t: t[0])]
    contact_ads: Counter[tuple[str, str]] = Counter()
    for ad in members:
        for kv in dict.fromkeys(ad.contacts):
            contact_ads[kv] += 1
    contacts = tuple(sorted(((k, v, n) for (k, v), n in contact_ads.items()),
                            key=lambda t: (-t[2], t[0], t[1])))
    cities: dict[str, str] = {}
    stays: list[Stay] = []
    for ad in ordered:
        city = (ad.location or "").strip()
        if not city:
            continue
        key = city.casefold()
        cities.setdefault(key, city)
        if stays and stays[-1].city.casefold() == key:
            last = stays[-1]
            stays[-1] = Stay(last.city, last.first_seen, ad.posted_at or last.last_seen,
                             last.ads + 1)
        else:
            stays.append(Stay(city, ad.posted_at, ad.posted_at, 1))
    times = [ad.posted_at for ad in members if ad.posted_at is not None]
    indicators: Counter[str] = Counter()
    for ad in members:
        indicators.update(set(ad.indicator_ids))
    scores = [ad.score for ad in members]
    template = None
    if template_ads:
        texts = [(ad.ad_id, ad.text) for ad in members[:template_ads] if ad.text.strip()]
        if len(texts) >= 2:
            template = build_template([t for _, t in texts], [i for i, _ in texts])
    return Network(
        network_id=nid,
        ad_ids=tuple(ad.ad_id for ad in ordered),
        contacts=contacts,
        cities=tuple(cities.values()),
        first_seen=min(times) if times else None,
        last_seen=max(times) if times else None,
        movement=tuple(stays),
        template=template,
        indicators=dict(indicators),
        max_score=max(scores),
        mean_score=round(sum(scores) / len(scores), 6),
        links=tuple(links),
        merged_ids=tuple(merged),
    )
