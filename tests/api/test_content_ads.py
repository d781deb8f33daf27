"""Issue 8 in the pipeline: ``POST /v1/content`` with classified-ad fields runs the trafficking
analysis; the verdict carries ``indicators``, ``contacts``, ``score`` and ``network_id``; the
ads are kept in the main store, shared with ``bastion ads``; the policy can open a case at a
score or a network size."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from tests.api.conftest import Api

from bastion.store.models_ads import StoredAd
from bastion.trafficking.adstore import AdRepository

#: A fictional US number (555-01xx), disguised: spelled-out and look-alike digits.
TEXT = "Sweet and friendly, call two0two 555 01four3 any time for an appointment today"
PHONE = "+12025550143"


def _post(api: Api, **fields: Any) -> dict[str, Any]:
    r = api.client.post("/v1/content", headers=api.h("content:submit"), json=fields)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _stored_ads(api: Api) -> int:
    with api.db.read() as s:
        return int(s.execute(select(func.count()).select_from(StoredAd)).scalar_one())


def test_ad_fields_run_the_analysis_and_link_ads_into_networks(api: Api) -> None:
    first = _post(api, content_id="ad-1", text=TEXT, title="New here",
                  location="Houston, TX", posted_at="2026-05-01T10:00:00Z")
    phones = [c for c in first["contacts"] if c["kind"] == "phone"]
    assert [p["value"] for p in phones] == [PHONE] and phones[0]["disguised"] is True
    assert TEXT[phones[0]["span"][0]:phones[0]["span"][1]] == phones[0]["raw"]
    assert 0.0 <= first["score"] <= 1.0
    assert "obscured-phone" in {i["id"] for i in first["indicators"]}
    assert all(i["source"] and len(i["span"]) == 2 for i in first["indicators"])
    assert first["network_id"] and first["network_size"] == 1
    # the same phone in another city, another day: the same network
    second = _post(api, content_id="ad-2", text="Call 202 555 0143 now, visiting this week",
                   location="Dallas, TX", posted_at="2026-05-03T10:00:00Z")
    assert second["network_id"] == first["network_id"] and second["network_size"] == 2
    unrelated = _post(api, content_id="ad-3", text="Piano lessons, call 202 555 0199",
                      location="Austin, TX")
    assert unrelated["network_id"] != first["network_id"]
    # stored verdicts keep the ad fields; a retry is a replay, other ad fields a conflict
    got = api.client.get("/v1/content/ad-1", headers=api.h("content:read")).json()
    assert got["network_id"] == first["network_id"] and got["contacts"] == first["contacts"]
    again = _post(api, content_id="ad-1", text=TEXT, title="New here",
                  location="Houston, TX", posted_at="2026-05-01T10:00:00Z")
    assert again["replayed"] is True and again["score"] == first["score"]
    moved = api.client.post("/v1/content", headers=api.h("content:submit"),
                            json={"content_id": "ad-1", "text": TEXT, "title": "New here",
                                  "location": "Austin, TX"})
    assert moved.status_code == 409
    # the CLI's repository sees the API's ads and their network
    nets = AdRepository(api.db).networks()
    assert nets.network_of("ad-2") == first["network_id"]
    net = nets.summary(first["network_id"])
    assert set(net.ad_ids) == {"ad-1", "ad-2"} and net.cities == ("Houston, TX", "Dallas, TX")


def test_ordinary_items_are_not_analysed_unless_opted_in(make_api: Any) -> None:
    api = make_api()
    plain = _post(api, content_id="post-1", text=TEXT)
    assert "score" not in plain and "network_id" not in plain
    assert _stored_ads(api) == 0
    bad = api.client.post("/v1/content", headers=api.h("content:submit"),
                          json={"content_id": "ad-x", "text": TEXT,
                                "posted_at": "2026-05-01T10:00:00"})  # no time zone
    assert bad.status_code == 422
    opted = make_api(ads_analysis=True)
    v = _post(opted, content_id="post-2", text=TEXT)
    assert [c["value"] for c in v["contacts"] if c["kind"] == "phone"] == [PHONE]
    assert _stored_ads(opted) == 1


def test_policy_opens_a_case_at_a_network_size_or_score(make_api: Any) -> None:
    api = make_api(policy={"rules": [
        {"name": "ad_network", "when": {"min_indicator": {"ads_network_size": 2}},
         "decision": "hold", "open_case": True, "priority": 60},
        {"name": "ad_score", "when": {"min_indicator": {"ads_score": 0.99}},
         "decision": "hold", "open_case": True},
    ]})
    first = _post(api, content_id="ad-1", text=TEXT, location="Houston, TX")
    assert first["case_id"] is None and first["decision"] == "allow"
    second = _post(api, content_id="ad-2", text="Call 202 555 0143 now", location="Dallas, TX")
    assert second["decision"] == "hold" and second["decision_rule"] == "ad_network"
    assert second["case_id"] is not None


def test_an_ad_over_the_analysis_limit_is_refused_and_nothing_is_kept(api: Api) -> None:
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        json={"content_id": "ad-long", "text": "word " * 14_000,
                              "location": "Houston, TX"})
    assert r.status_code == 413, r.text
    assert _stored_ads(api) == 0
    assert api.client.get("/v1/content/ad-long", headers=api.h("content:read")).status_code == 404


def test_stored_verdicts_report_the_surviving_network_after_a_merge(api: Api) -> None:
    a = _post(api, content_id="m-1", text="Call 202 555 0143 for an appointment",
              location="Houston, TX", posted_at="2026-05-01T10:00:00Z")
    b = _post(api, content_id="m-2", text="Call 202 555 0177 for an appointment",
              location="Dallas, TX", posted_at="2026-05-02T10:00:00Z")
    assert a["network_id"] != b["network_id"]
    bridge = _post(api, content_id="m-3", text="Call 202 555 0143 or 202 555 0177",
                   location="Austin, TX", posted_at="2026-05-03T10:00:00Z")
    # the older network's id survives; the younger one's stored verdict now reports it
    assert bridge["network_id"] == a["network_id"] and bridge["network_size"] == 3
    got = api.client.get("/v1/content/m-2", headers=api.h("content:read")).json()
    assert got["network_id"] == a["network_id"]
    assert got["network_size"] == 1  # the size when the verdict was made
    replay = _post(api, content_id="m-2", text="Call 202 555 0177 for an appointment",
                   location="Dallas, TX", posted_at="2026-05-02T10:00:00Z")
    assert replay["replayed"] is True and replay["network_id"] == a["network_id"]


def test_policy_opens_a_case_for_a_network_spread_over_cities_and_days(
        make_api: Any) -> None:
    api = make_api(policy={"rules": [
        {"name": "ad_spread",
         "when": {"min_indicator": {"ads_network_cities": 2, "ads_network_days": 3}},
         "decision": "hold", "open_case": True, "priority": 55},
    ]})
    first = _post(api, content_id="s-1", text=TEXT, location="Houston, TX",
                  posted_at="2026-05-01T10:00:00Z")
    # two cities, but within a day: not yet
    second = _post(api, content_id="s-2", text="Call 202 555 0143 now",
                   location="Dallas, TX", posted_at="2026-05-01T20:00:00Z")
    assert (first["case_id"], second["case_id"]) == (None, None)
    assert second["decision"] == "allow"
    # four days after the first posting: the spread rule holds
    third = _post(api, content_id="s-3", text="Call 202 555 0143 today",
                  location="Dallas, TX", posted_at="2026-05-05T10:00:00Z")
    assert third["decision"] == "hold" and third["decision_rule"] == "ad_spread"
    assert third["case_id"] is not None


def test_a_restarted_service_rebuilds_the_ad_networks_before_the_first_request(
        make_api: Any) -> None:
    import time

    from bastion.trafficking import adstore

    first = make_api()
    _post(first, content_id="ad-1", text=TEXT, location="Houston, TX")
    # A new process: no repository of this database exists yet.
    delattr(first.db, adstore._SHARED_ATTR)
    make_api(sample=False)
    deadline = time.monotonic() + 20
    repo = None
    while time.monotonic() < deadline:
        repo = getattr(first.db, adstore._SHARED_ATTR, None)
        if repo is not None and repo._networks is not None:
            break
        time.sleep(0.05)
    assert repo is not None and repo._networks is not None, "networks not rebuilt at start"
    assert repo._networks.network_of("ad-1") is not None
