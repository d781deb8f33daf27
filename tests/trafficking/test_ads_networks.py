"""Ad networks: linking by contacts, photos and near-duplicate text; incremental = batch =
brute-force oracle; stable ids; summaries."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.signals.pdq import hamming, pdq_hash
from bastion.trafficking.lexicon import load_lexicon
from bastion.trafficking.networks import AdNetworks, NetworkAd, jaccard, shingle_hashes
from bastion.trafficking.schemas import Ad
from bastion.trafficking.service import analyse_ad, network_ad
from bastion.trafficking.synthetic import SyntheticConfig, generate

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"
ORIG = DATA / "bridge-mods" / "aaa-orig.jpg"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _reencoded_hash(path: Path, scale: float, quality: int) -> str:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        w, h = rgb.size
        small = rgb.resize((max(8, int(w * scale)), max(8, int(h * scale))), Image.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as again:
        return pdq_hash(np.asarray(again.convert("RGB"))).value


def _synthetic_picture(seed: int) -> str:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base).resize((256, 256), Image.BICUBIC))
    return pdq_hash(big).value


def _ad(ad_id: str, text: str, day: int, city: str, pdq: tuple[str, ...] = ()) -> NetworkAd:
    lex = load_lexicon()
    ad = Ad(ad_id, text, location=city, posted_at=T0 + timedelta(days=day), pdq=pdq)
    return network_ad(ad, analyse_ad(ad, lex))


FILLER = [
    "Good day. Quiet bright harbour rooms by the museum, tea offered in the lobby.",
    "Welcome. Parking behind the marble depot; evening hours run late at the pier.",
    "Hi there. The rustic orchard entrance is the easiest way in, ring the bell.",
    "Greetings. Lifts and stairs lead to the tiled rotunda floor near the wharf.",
    "Hello. Cards and cash are fine at the sleek pavilion desk by the fountain.",
    "Morning times are often free at the leafy meadow; cancellations a day before.",
]


def test_photo_only_network_from_a_reencoded_resized_picture() -> None:
    hashes = [_reencoded_hash(ORIG, s, q) for s, q in ((1.0, 90), (0.6, 70), (0.35, 50))]
    assert max(hamming(hashes[0], h) for h in hashes) <= 31
    other = _synthetic_picture(7)
    assert hamming(other, hashes[0]) > 31
    nets = AdNetworks()
    ids = [
        nets.add(_ad("p1", FILLER[0] + " Call 202-555-0101.", 0, "Houston, TX", (hashes[0],))),
        nets.add(_ad("p2", FILLER[1] + " Text 713 555 0102.", 1, "Dallas, TX", (hashes[1],))),
        nets.add(_ad("x1", FILLER[3] + " Call 312 555 0104.", 1, "Chicago, IL", (other,))),
        nets.add(_ad("p3", FILLER[2] + " Phone 512.555.0103.", 2, "Austin, TX", (hashes[2],))),
    ]
    assert ids[0] == ids[1] == ids[3] != ids[2]
    summary = nets.summary(ids[0])
    assert summary.ad_ids == ("p1", "p2", "p3")
    assert {lk.kind for lk in summary.links} == {"photo"}
    assert summary.cities == ("Houston, TX", "Dallas, TX", "Austin, TX")
    assert [s.city for s in summary.movement] == ["Houston, TX", "Dallas, TX", "Austin, TX"]


def test_featureless_pictures_never_link() -> None:
    nets = AdNetworks()
    a = nets.add(_ad("a", FILLER[0], 0, "X", ("0" * 64,)))
    b = nets.add(_ad("b", FILLER[1], 0, "X", ("0" * 64,)))
    assert a != b


def test_near_duplicate_text_only_network() -> None:
    template = ("Hello, I am {n}. Open for bookings {w} near the bright harbour and the "
                "marble pier. Ring the bell at the rustic door beside the fountain. Tea and "
                "water are offered in the sunny waiting area. Parking is behind the depot. "
                "Text {p} for times.")
    rows = [("Anna", "today", "202-555-0111"), ("Bella", "tonight", "713-555-0122"),
            ("Cleo", "on Monday", "312-555-0133")]
    nets = AdNetworks()
    ids = [nets.add(_ad(f"t{k}", template.format(n=n, w=w, p=p), k, "Boston, MA"))
           for k, (n, w, p) in enumerate(rows)]
    lone = nets.add(_ad("u", FILLER[4] + " " + FILLER[5] + " Call 404-555-0144.", 3,
                        "Atlanta, GA"))
    assert ids[0] == ids[1] == ids[2] != lone
    summary = nets.summary(ids[0])
    assert {lk.kind for lk in summary.links} == {"text"}
    assert summary.template is not None
    text = summary.template.text
    assert "[SLOT" in text and "Ring the bell at the rustic door" in text
    values = {v for s in summary.template.slots for v, _ in s.examples}
    assert {"Anna", "Bella", "Cleo"} <= values


def test_shared_phone_email_handle_link_and_merge_keeps_the_older_id() -> None:
    nets = AdNetworks()
    a = nets.add(_ad("a", FILLER[0] + " Call 202-555-0150.", 0, "Miami, FL"))
    b = nets.add(_ad("b", FILLER[1] + " snap: jane_doe", 1, "Orlando, FL"))
    assert a != b
    c = nets.add(_ad("c", FILLER[2] + " two0two 555 0150", 2, "Tampa, FL"))
    assert c == a
    # d joins b's network by handle and a's by e-mail? no: d links a and b -> merge
    d = nets.add(_ad("d", FILLER[3] + " snap: jane_doe, 202.555.0150", 3, "Miami, FL"))
    assert d == a  # a is older than b
    assert nets.merged_into == {b: a}
    assert nets.resolve(b) == a
    assert nets.network_of("b") == a
    s = nets.summary(b)
    assert s.network_id == a and s.merged_ids == (b,)
    assert ("phone", "+12025550150", 3) in s.contacts
    assert s.first_seen == T0 and s.last_seen == T0 + timedelta(days=3)
    assert [st.city for st in s.movement] == ["Miami, FL", "Orlando, FL", "Tampa, FL",
                                                "Miami, FL"]
    with pytest.raises(NotFound):
        nets.resolve("net-999")
    with pytest.raises(Conflict):
        nets.add(_ad("a", "again", 0, "X"))


def _oracle(ads: list[NetworkAd], nets: AdNetworks) -> list[frozenset[str]]:
    """Brute force: every pair checked with the same link rules, then components."""
    n = len(ads)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    sh = [shingle_hashes(a.text) for a in ads]
    for i in range(n):
        for j in range(i):
            a, b = ads[i], ads[j]
            linked = bool({c for c in a.contacts if c[0] in ("phone", "email", "handle")}
                          & set(b.contacts))
            linked = linked or any(
                hamming(x, y) <= nets.pdq_threshold for x in a.pdq for y in b.pdq
                if x not in ("0" * 64,) and y not in ("0" * 64,))
            if not linked and sh[i].size >= nets.min_shingles and sh[j].size >= nets.min_shingles:
                linked = jaccard(sh[i], sh[j]) >= nets.text_threshold
            if linked:
                parent[find(i)] = find(j)
    groups: dict[int, set[str]] = {}
    for i in range(n):
        groups.setdefault(find(i), set()).add(ads[i].ad_id)
    return sorted((frozenset(g) for g in groups.values()), key=lambda g: sorted(g))


def test_one_at_a_time_equals_all_at_once_equals_oracle() -> None:
    cfg = SyntheticConfig(networks=12, singles=15, legal=15, network_size=(2, 6))
    synth = generate(cfg, seed=11)
    lex = load_lexicon()
    ads = [network_ad(s.ad, analyse_ad(s.ad, lex)) for s in synth]
    one = AdNetworks()
    ids_one = [one.add(a) for a in ads]
    batch = AdNetworks()
    ids_batch = batch.add_many(ads)
    half = AdNetworks()
    ids_half = half.add_many(ads[:30])
    ids_half += [half.add(a) for a in ads[30:]]
    final = [one.network_of(a.ad_id) for a in ads]
    assert [batch.network_of(a.ad_id) for a in ads] == final
    assert [half.network_of(a.ad_id) for a in ads] == final
    assert ids_one[-1] == ids_batch[-1] == ids_half[-1]
    key = lambda g: sorted(g)  # noqa: E731
    assert sorted(one.partition(), key=key) == _oracle(ads, one)
    # and the synthetic truth: each planted network is recovered, unrelated ads stay apart
    truth: dict[str, set[str]] = {}
    for s in synth:
        truth.setdefault(s.network or s.ad.ad_id, set()).add(s.ad.ad_id)
    assert sorted(map(frozenset, truth.values()), key=key) == sorted(one.partition(), key=key)


def test_summaries_of_a_synthetic_corpus() -> None:
    synth = generate(SyntheticConfig(networks=6, singles=4, legal=4), seed=3)
    lex = load_lexicon()
    nets = AdNetworks()
    nets.add_many([network_ad(s.ad, analyse_ad(s.ad, lex)) for s in synth])
    sums = nets.summaries(min_size=2)
    assert len(sums) == 6
    for s in sums:
        js = s.to_json()
        assert js["size"] == len(js["ad_ids"]) >= 2
        assert js["first_seen"] <= js["last_seen"]
        assert js["cities"] and js["movement"]
        assert js["template"] is not None


def _crowded_corpus() -> list[NetworkAd]:
    """700 ads sharing 30 words of boilerplate (crowded LSH buckets), among which one
    template network of 120 near-duplicate ads (every sixth ad, two words changed each)."""
    rng = np.random.default_rng(5)
    vocab = [f"w{i}" for i in range(6000)]
    shared = " ".join(vocab[:30])
    template = [f"t{i}" for i in range(40)]
    ads: list[NetworkAd] = []
    for k in range(700):
        if k % 6 == 0:
            words = list(template)
            for i in rng.choice(len(words), 2, replace=False):
                words[i] = f"x{k}_{i}"
            text = f"{shared} " + " ".join(words)
        else:
            own = rng.choice(len(vocab) - 30, 25, replace=False) + 30
            text = f"{shared} " + " ".join(vocab[i] for i in own)
        ads.append(NetworkAd(f"c{k:04d}", text))
    return ads


def test_crowded_buckets_keep_a_large_template_network_and_order_equality() -> None:
    """With few candidates per bucket (``bucket_recent=4``) a 120-ad template network spread
    among 580 ads of shared boilerplate is still one network, the others stay apart, and one
    at a time, all at once and half/half give the same networks."""
    ads = _crowded_corpus()
    one = AdNetworks(bucket_recent=4)
    for a in ads:
        one.add(a)
    batch = AdNetworks(bucket_recent=4)
    batch.add_many(ads)
    half = AdNetworks(bucket_recent=4)
    half.add_many(ads[:350])
    for a in ads[350:]:
        half.add(a)
    expected = {frozenset(a.ad_id for k, a in enumerate(ads) if k % 6 == 0)}
    expected |= {frozenset([a.ad_id]) for k, a in enumerate(ads) if k % 6}
    assert set(one.partition()) == expected
    assert one.partition() == batch.partition() == half.partition()
    assert [one.network_of(a.ad_id) for a in ads] == [batch.network_of(a.ad_id) for a in ads]
    assert AdNetworks(bucket_recent=4).add_many(ads) == [half.network_of(a.ad_id) for a in ads]
    with pytest.raises(InvalidInput):
        AdNetworks(bucket_recent=0)
