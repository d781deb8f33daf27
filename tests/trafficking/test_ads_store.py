"""Ads kept in the main store: networks rebuilt on start, shared between repositories."""

from __future__ import annotations

import pytest

from bastion.errors import Conflict
from bastion.store.database import Database
from bastion.trafficking.adstore import AdRepository
from bastion.trafficking.lexicon import load_lexicon
from bastion.trafficking.schemas import Ad
from bastion.trafficking.service import analyse_ad
from bastion.trafficking.synthetic import SyntheticConfig, generate


def _ads() -> list[Ad]:
    synth = generate(SyntheticConfig(networks=4, singles=6, legal=4), seed=11)
    return [s.ad for s in synth]


def _keep_all(repo: AdRepository, db: Database, ads: list[Ad]) -> list[str]:
    lex = load_lexicon()
    out = []
    with db.write() as session:
        for ad in ads:
            kept = repo.keep(session, ad, analyse_ad(ad, lex), source="test")
            assert kept.network_id is not None
            out.append(kept.network_id)
    return out


def test_networks_survive_a_restart_and_are_shared(db: Database) -> None:
    ads = _ads()
    first = AdRepository(db)
    ids = _keep_all(first, db, ads[:20])
    assert len(set(ids)) < len(ids)  # some ads joined networks
    # a second repository (another process, or a restart) sees them, and what the first adds
    second = AdRepository(db)
    assert second.networks().partition() == first.networks().partition()
    more = _keep_all(first, db, ads[20:])
    assert second.networks().partition() == first.networks().partition()
    restarted = AdRepository(db)
    nets = restarted.networks()
    assert [nets.network_of(a.ad_id) for a in ads] == ids + more
    with db.read() as session:
        assert restarted.count(session) == len(ads)
        got = restarted.get(session, ads[0].ad_id)
        assert got is not None and got.network_id == ids[0]
        assert got.indicators == analyse_ad(ads[0], load_lexicon()).indicators
        assert restarted.get(session, "no-such-ad") is None
    size, cities = restarted.network_size(ids[0])
    assert size == sum(1 for n in ids + more if n == ids[0]) and cities >= 1


def test_a_repeated_ad_is_refused_and_a_failed_transaction_is_forgotten(db: Database) -> None:
    ads = _ads()
    repo = AdRepository(db)
    _keep_all(repo, db, ads[:3])
    with pytest.raises(Conflict):
        _keep_all(repo, db, ads[:1])
    with pytest.raises(RuntimeError), db.write() as session:
        repo.keep(session, ads[3], analyse_ad(ads[3], load_lexicon()), source="test")
        raise RuntimeError("the verdict's transaction fails")
    repo.discard()
    nets = repo.networks()
    assert ads[3].ad_id not in nets and len(nets) == 3
