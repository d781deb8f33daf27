"""What the network pages and the policy read of ad networks: spread (ads, cities, days),
the list overview, members in posting order, recorded links, and the current network of an
ad after merges (through one shared repository per database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.errors import NotFound
from bastion.store.database import Database
from bastion.trafficking.adstore import AdRepository, shared_repository
from bastion.trafficking.lexicon import load_lexicon
from bastion.trafficking.networks import AdNetworks, NetworkAd
from bastion.trafficking.schemas import Ad
from bastion.trafficking.service import analyse_ad, network_ad

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _ad(ad_id: str, phone: str, city: str | None, hours: float | None,
        extra: str = "") -> Ad:
    return Ad(ad_id, f"Friendly and professional, call {phone} today. {extra}",
              location=city, posted_at=None if hours is None else T0 + timedelta(hours=hours))


def _net_ad(ad: Ad) -> NetworkAd:
    return network_ad(ad, analyse_ad(ad, load_lexicon()))


def test_spread_counts_cities_casefolded_and_days_between_postings() -> None:
    nets = AdNetworks()
    nid = nets.add(_net_ad(_ad("a", "202 555 0143", "Houston, TX", 0)))
    assert nets.spread(nid).ads == 1 and nets.spread(nid).days == 0.0
    nets.add(_net_ad(_ad("b", "202 555 0143", "houston, tx ", 36)))
    nets.add(_net_ad(_ad("c", "202 555 0143", "Dallas, TX", 24 * 9 + 12)))
    nets.add(_net_ad(_ad("d", "202 555 0143", None, None)))
    sp = nets.spread(nid)
    assert (sp.ads, sp.cities, sp.days) == (4, 2, 9.5)
    summary = nets.summary(nid)
    assert summary.days == 9.5 and summary.to_json()["days"] == 9.5
    with pytest.raises(NotFound):
        nets.spread("net-999")


def test_members_are_in_posting_order_and_overview_lists_each_network() -> None:
    nets = AdNetworks()
    # arrival order differs from posting order
    nets.add(_net_ad(_ad("late", "202 555 0143", "Dallas, TX", 48)))
    nets.add(_net_ad(_ad("early", "202 555 0143", "Houston, TX", 2)))
    nets.add(_net_ad(_ad("undated", "202 555 0143", "Austin, TX", None)))
    nets.add(_net_ad(_ad("alone", "202 555 0188", "Austin, TX", 5)))
    nets.add(_net_ad(_ad("p1", "202 555 0177", "Austin, TX", 1, "New in town.")))
    nets.add(_net_ad(_ad("p2", "202 555 0177", "Austin, TX", 3, "New in town.")))
    assert [a.ad_id for a in nets.members("net-1")] == ["early", "late", "undated"]
    rows = nets.overview()
    assert [(r.network_id, r.size) for r in rows] == [("net-1", 3), ("net-5", 2)]
    first = rows[0]
    assert first.cities == ("Houston, TX", "Dallas, TX", "Austin, TX")
    assert first.first_seen == T0 + timedelta(hours=2)
    assert first.last_seen == T0 + timedelta(hours=48) and first.days == pytest.approx(1.917)
    # plain digits are not disguised: no obscured-phone indicator
    assert first.top_indicators == (("trustworthy-provider", 3),)
    assert rows[1].top_indicators == (("movement-language", 2), ("trustworthy-provider", 2))
    assert [r.network_id for r in nets.overview(min_size=1)] == [
        "net-1", "net-4", "net-5"]
    assert {lk.kind for lk in nets.links_of("net-1")} == {"phone"}
    assert nets.links_of("net-4") == ()


def test_merged_ids_resolve_to_the_older_network() -> None:
    nets = AdNetworks()
    old = nets.add(_net_ad(_ad("x1", "202 555 0143", "Houston, TX", 0)))
    young = nets.add(_net_ad(_ad("y1", "202 555 0199", "Dallas, TX", 5)))
    assert old != young
    # one ad with both phones bridges them: the older id survives
    bridge = _ad("xy", "202 555 0143", "Austin, TX", 9, "Or call 202 555 0199.")
    assert nets.add(_net_ad(bridge)) == old
    assert nets.resolve(young) == old and nets.network_of("y1") == old
    assert nets.spread(young) == nets.spread(old)
    assert [a.ad_id for a in nets.members(young)] == ["x1", "y1", "xy"]


def test_the_repository_reports_the_current_network_of_a_stored_ad(db: Database) -> None:
    lex = load_lexicon()
    repo = shared_repository(db)
    assert shared_repository(db) is repo  # one per database in a process
    kept: dict[str, str] = {}
    for ad in (_ad("x1", "202 555 0143", "Houston, TX", 0),
               _ad("y1", "202 555 0199", "Dallas, TX", 30)):
        with db.write() as s:
            got = repo.keep(s, ad, analyse_ad(ad, lex), source="test")
            assert got.network_id is not None
            kept[ad.ad_id] = got.network_id
    assert kept["x1"] != kept["y1"]
    before = repo.overview(min_size=1)
    assert [o.network_id for o in before] == [kept["x1"], kept["y1"]]
    bridge = _ad("xy", "202 555 0143", "Austin, TX", 24 * 3, "Or call 202 555 0199.")
    with db.write() as s:
        repo.keep(s, bridge, analyse_ad(bridge, lex), source="test")
    with db.read() as s:
        assert repo.current_network_id(s, "y1") == kept["x1"]
        assert repo.current_network_id(s, "no-such-ad") is None
        got_y = repo.get(s, "y1")
        assert got_y is not None and got_y.network_id == kept["x1"]
    # the cached overview follows the new ad
    after = repo.overview(min_size=1)
    assert [(o.network_id, o.size) for o in after] == [(kept["x1"], 3)]
    facts = repo.policy_facts(kept["y1"])
    assert facts == {"ads_network_size": 3.0, "ads_network_cities": 3.0,
                     "ads_network_days": 3.0}
    # another process's repository (a restart) replays the same ids and merges
    other = AdRepository(db)
    assert other.read(lambda n: n.resolve(kept["y1"])) == kept["x1"]
    with pytest.raises(NotFound):
        other.read(lambda n: n.resolve("net-77"))


def test_template_pieces_mark_slots_and_rebuild_the_text() -> None:
    from bastion.trafficking.template import Template, build_template

    texts = ["Hello, I am Mia. Visiting Houston this week (call now).",
             "Hello, I am Zoe. Visiting Dallas this week (call now).",
             "Hello, I am Ivy. Visiting Austin this week (call now)."]
    t = build_template(texts)
    assert t.pieces() == ["Hello, I am ", 1, ". Visiting ", 2, " this week (call now)."]
    assert t.text == "Hello, I am [SLOT 1]. Visiting [SLOT 2] this week (call now)."
    # punctuation glued to a slot's left, a slot first, slots next to each other
    odd = Template((1, ",", "a", 2, 3, "!", "(", "b", ")"), (), 1, ())
    assert odd.pieces() == [1, ", a ", 2, " ", 3, "! (b)"]
    assert odd.text == "[SLOT 1], a [SLOT 2] [SLOT 3]! (b)"
    priced = Template(("from", "$", 1, "per", "hour", "#", "2"), (), 1, ())
    assert priced.text == "from $[SLOT 1] per hour #2"


def test_network_ids_come_from_the_ads_keys_and_survive_a_replay_without_an_ad() -> None:
    from dataclasses import replace

    from bastion.errors import Conflict

    nets = AdNetworks()
    a = nets.add(replace(_net_ad(_ad("a", "202 555 0143", "Houston, TX", 0)), key=10))
    b = nets.add(replace(_net_ad(_ad("b", "202 555 0177", "Dallas, TX", 1)), key=25))
    assert (a, b) == ("net-10", "net-25")
    bridge = _ad("ab", "202 555 0143", "Austin, TX", 2, "Or call 202 555 0177.")
    assert nets.add(replace(_net_ad(bridge), key=31)) == "net-10"
    assert nets.resolve("net-25") == "net-10" and nets.merged_into == {"net-25": "net-10"}
    with pytest.raises(NotFound):
        nets.resolve("net-31")  # an ad's key names a network only while it is the oldest
    with pytest.raises(Conflict):
        nets.add(replace(_net_ad(_ad("c", "202 555 0188", None, None)), key=25))
    assert "c" not in nets


def test_deleted_ads_leave_every_repositorys_networks(db: Database) -> None:
    from bastion.trafficking.adstore import delete_ads

    lex = load_lexicon()
    repo = AdRepository(db)
    ads = [_ad("p1", "202 555 0143", "Houston, TX", 0),
           _ad("p2", "202 555 0143", "Dallas, TX", 30),
           _ad("q1", "202 555 0177", "Austin, TX", 40),
           _ad("q2", "202 555 0177", "Waco, TX", 50)]
    ids = {}
    for ad in ads:
        with db.write() as s:
            kept = repo.keep(s, ad, analyse_ad(ad, lex), source="test")
            ids[ad.ad_id] = kept.network_id
    other = AdRepository(db)  # another process, loaded before the deletion
    assert other.read(lambda n: len(n)) == 4
    with db.write() as s:
        assert delete_ads(s, ["q1", "no-such-ad"]) == 1
        assert delete_ads(s, []) == 0
    for r in (repo, other):
        # rebuilt without q1: p's network keeps its id; q's is named after q2 now
        assert r.read(lambda n: len(n)) == 3
        with db.read() as s:
            assert r.current_network_id(s, "q1") is None
            assert r.current_network_id(s, "p2") == ids["p1"]
            q2 = r.current_network_id(s, "q2")
        assert q2 is not None and q2 != ids["q1"]
        assert [o.network_id for o in r.overview(min_size=1)] == [ids["p1"], q2]
        assert [a.ad_id for a in r.read(lambda n: n.members(ids["p1"]))] == ["p1", "p2"]
    # a third repository, started after the deletion, agrees
    assert AdRepository(db).read(lambda n: n.partition()) == repo.read(
        lambda n: n.partition())
