"""Ad network pages of the review UI (issue 8): the list (sorted, paginated), a network's
page (graph, timeline, cities, template with slots, indicators, ads with their cases), the
redirect from a merged-away id, what auditors may see, and the case page's network box."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.web.helpers import UiClients

from bastion.api.app import create_app
from bastion.apikeys import service as keys
from bastion.config import load_settings
from bastion.store.audit import list_audit_events
from bastion.store.database import Database
from bastion.trafficking.networks import Link, NetworkAd
from bastion.users import service as users
from bastion.web import ads as ads_pages

PW = "a long enough password"
#: Fictional numbers (555-01xx): E.164 values and how the ads write them.
PHONE_A, PHONE_B = "+12025550143", "+12025550177"
#: One template, three slots filled differently per ad (neutral filler text).
TEMPLATE = ("Hello, I am {name}, friendly and professional. Visiting {city} this week near "
            "the {place} with tea and music. The rooms are quiet and bright, with parking "
            "behind the building and a small garden for guests to enjoy in the afternoon. "
            "Call {phone} to book an appointment today.")

POLICY = {"rules": [
    {"name": "ad_network", "when": {"min_indicator": {"ads_network_size": 2}},
     "decision": "hold", "open_case": True, "priority": 60},
]}


class Site(UiClients):
    """The app with one user per role and an API key that submits ads."""

    def __init__(self, db: Database, tmp_path: Path) -> None:
        self.db = db
        settings = load_settings(
            environ={"BASTION_MASTER_KEY": "ab" * 32}, home=tmp_path / "home",
            decode_workers=0, review={"secure_cookies": False}, policy=POLICY)
        with db.write() as s:
            self.key = keys.create(s, name="t", scopes=["admin"])[1]
            for role in ("reviewer", "auditor", "admin"):
                users.create(s, name=role, role=role, password=PW, actor="test")
        self.app = create_app(settings, db=db)
        self.clients: list[TestClient] = []

    def post_ad(self, content_id: str, text: str, city: str, day: int,
                hour: int = 10) -> dict[str, Any]:
        c = self.clients[0] if self.clients else self.client()
        self.wait_ready(c)
        r = c.post("/v1/content", headers={"Authorization": f"Bearer {self.key}"},
                   json={"content_id": content_id, "text": text, "location": city,
                         "posted_at": f"2026-05-{day:02d}T{hour:02d}:00:00Z"})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Iterator[Site]:
    s = Site(db, tmp_path)
    yield s
    s.close()


def _ad_text(name: str, city: str, place: str, phone: str) -> str:
    return TEMPLATE.format(name=name, city=city, place=place, phone=phone)


def _a_network(site: Site) -> list[dict[str, Any]]:
    """Three ads of one template and phone moving Houston -> Dallas -> Austin, and a fourth
    in Austin linked only by its near-duplicate text (another phone)."""
    return [
        site.post_ad("ad-1", _ad_text("Mia", "Houston", "harbour", "202 555 0143"),
                     "Houston, TX", 1),
        site.post_ad("ad-2", _ad_text("Zoe", "Dallas", "museum", "two0two 555 01four3"),
                     "Dallas, TX", 4),
        site.post_ad("ad-3", _ad_text("Ivy", "Austin", "orchard", "202.555.0143"),
                     "Austin, TX", 9),
        site.post_ad("ad-4", _ad_text("Ava", "Waco", "garden", "202 555 0177"),
                     "Austin, TX", 10),
    ]


def _no_inline_code(html: str) -> None:
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no event-handler attributes


def test_a_reviewer_sees_the_network_page(site: Site) -> None:
    verdicts = _a_network(site)
    nid = verdicts[0]["network_id"]
    assert {v["network_id"] for v in verdicts} == {nid}
    case_ids = [v["case_id"] for v in verdicts]
    assert case_ids[0] is None and all(case_ids[1:])  # size >= 2 opens a case
    site.post_ad("lone", "Piano lessons for beginners, call 202 555 0199",
                 "Austin, TX", 2)
    c = site.client("reviewer")
    listing = c.get("/ui/networks")
    assert listing.status_code == 200
    assert "default-src 'self'" in listing.headers["content-security-policy"]
    assert f'href="/ui/networks/{nid}"' in listing.text and "lone" not in listing.text
    assert 'href="/ui/networks"' in listing.text  # the nav link
    _no_inline_code(listing.text)
    page = c.get(f"/ui/networks/{nid}")
    assert page.status_code == 200, page.text
    html = page.text
    _no_inline_code(html)
    # the graph: every ad, the shared phone as a node, the text-only link as an arc
    svg = html.split('<svg', 1)[1].split("</svg>", 1)[0]
    for ad_id in ("ad-1", "ad-2", "ad-3", "ad-4"):
        assert ad_id in svg
    assert PHONE_A in svg and "(3 ads)" in svg
    assert "text link ad-3 - ad-4" in svg or "text link ad-1 - ad-4" in svg \
        or "text link ad-2 - ad-4" in svg
    # ads with cases link to them, in the graph and in the table
    for cid in case_ids[1:]:
        assert f'href="/ui/cases/{cid}"' in svg and f">#{cid}</a>" in html
    # the timeline has one lane per city; the movement in posting order with dates
    assert html.count('<svg') == 2 and "one lane per city" in html
    movement = html.split('class="movement"')[1].split("</ol>")[0]
    assert [m.split(":")[0].strip() for m in re.findall(r"<li>([^<]+)", movement)] == [
        "Houston, TX", "Dallas, TX", "Austin, TX"]
    assert "2026-05-01 10:00" in movement and "2026-05-09 10:00 to 2026-05-10 10:00" in movement
    # the template: shared words kept, varying names/cities/places marked as slots
    template = html.split('id="template">')[1].split("</p>")[0]
    assert "friendly and professional" in template and "Mia" not in template
    assert template.count('<mark class="slot">') == 3
    for value in ("Mia", "Zoe", "Ivy", "Ava", "Houston", "Waco", "harbour", "garden"):
        assert f"<q>{value}</q> (1)" in html
    # indicators with their sources; the ads' text
    assert "obscured-phone" in html and "Lugo-Graulich" in html
    assert "Visiting Houston this week" in html and PHONE_B in html
    assert "9.0" in html  # days from the first to the last posting
    with site.db.read() as s:
        views = [(e.object_id, (e.detail or {}).get("text_shown"))
                 for e in list_audit_events(s, action="network.view")]
    assert views == [(nid, True)]


def test_an_auditor_sees_the_structure_without_ad_text_or_contacts(site: Site) -> None:
    verdicts = _a_network(site)
    nid = verdicts[0]["network_id"]
    c = site.client("auditor")
    html = c.get(f"/ui/networks/{nid}").text
    assert 'id="no-text"' in html
    assert "Visiting" not in html and "Mia" not in html and "harbour" not in html
    assert PHONE_A not in html and "555" not in html
    assert "phone 1" in html and "phone 2" in html  # masked, still distinguishable
    assert 'id="template"' not in html and "Not shown to your role" in html
    assert "obscured-phone" in html and "Austin, TX" in html  # structure stays
    assert f'href="/ui/cases/{verdicts[1]["case_id"]}"' in html
    with site.db.read() as s:
        views = [(e.actor, (e.detail or {}).get("text_shown"))
                 for e in list_audit_events(s, action="network.view")]
    assert views == [("user:2", False)]
    # the case box is the same facts for an auditor
    case_page = c.get(f"/ui/cases/{verdicts[1]['case_id']}").text
    assert 'id="ad-network"' in case_page and f'href="/ui/networks/{nid}"' in case_page


def test_a_merged_away_network_redirects_to_the_surviving_one(site: Site) -> None:
    old = site.post_ad("x-1", "Call 202 555 0143 for an appointment", "Houston, TX", 1)
    young = site.post_ad("y-1", "Call 202 555 0177 for an appointment", "Dallas, TX", 2)
    young2 = site.post_ad("y-2", "Ring 202 555 0177 any time", "Dallas, TX", 3)
    assert old["network_id"] != young["network_id"] == young2["network_id"]
    c = site.client("reviewer")
    # before the merge, the young network's case box names it
    box = c.get(f"/ui/cases/{young2['case_id']}").text
    assert f'href="/ui/networks/{young["network_id"]}"' in box
    site.post_ad("xy", "Call 202 555 0143 or 202 555 0177", "Austin, TX", 4)
    r = c.get(f"/ui/networks/{young['network_id']}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/ui/networks/{old['network_id']}"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and young["network_id"] in page.text  # "merged in"
    # the case page of an ad of the merged-away network links to the survivor
    box = c.get(f"/ui/cases/{young2['case_id']}").text
    assert f'href="/ui/networks/{old["network_id"]}"' in box
    assert "4 ads" in box and "3 cities" in box


def test_unknown_ids_signed_out_and_plain_cases(site: Site) -> None:
    _a_network(site)
    anon = site.client()
    r = anon.get("/ui/networks", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in"
    c = site.client("reviewer")
    for bad in ("net-999", "net-0", "garbage", "net-" + "9" * 40, "net-1%3Cb%3E"):
        r = c.get(f"/ui/networks/{bad}")
        assert r.status_code == 404, (bad, r.status_code)
        assert "Not possible" in r.text
    assert c.get("/ui/networks?page=0").status_code == 422
    assert c.get("/ui/networks?sort=name").status_code == 422
    # a case of an item that is not an ad has no network box
    from types import SimpleNamespace

    from bastion.trafficking.adstore import shared_repository

    with site.db.read() as s:
        repo = shared_repository(site.db)
        assert ads_pages.network_box(s, SimpleNamespace(content_id="post-9"), repo) == {
            "ad_network": None}
        got = ads_pages.network_box(s, SimpleNamespace(content_id="ad-2"), repo)
    assert got["ad_network"]["ads"] == 4 and got["ad_network"]["other_case_count"] == 2


def test_the_list_sorts_and_pages(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    # three networks: sizes 3, 2, 2; the last-posted is the second pair
    for k, day in ((1, 1), (2, 2), (3, 3)):
        site.post_ad(f"big-{k}", "Call 202 555 0143 now", "Houston, TX", day)
    site.post_ad("p-1", "Call 202 555 0151 now", "Dallas, TX", 5)
    site.post_ad("p-2", "Call 202 555 0151 today", "Dallas, TX", 6)
    site.post_ad("q-1", "Call 202 555 0162 now", "Austin, TX", 7)
    site.post_ad("q-2", "Call 202 555 0162 today", "Austin, TX", 20)
    monkeypatch.setattr(ads_pages, "PAGE_SIZE", 2)
    c = site.client("reviewer")

    def ids(html: str) -> list[str]:
        return re.findall(r'<td><a href="/ui/networks/(net-\d+)">', html)

    first = c.get("/ui/networks").text
    assert ids(first) == ["net-1", "net-6"] and "Page 1 of 2" in first  # size, then recency
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = c.get("/ui/networks?page=2").text
    assert ids(second) == ["net-4"] and 'rel="prev"' in second
    assert ids(c.get("/ui/networks?page=99").text) == ["net-4"]  # clamped to the last
    recent = c.get("/ui/networks?sort=recent").text
    assert ids(recent) == ["net-6", "net-4"]
    assert ids(c.get("/ui/networks?min_size=3").text) == ["net-1"]
    assert 'id="no-networks"' in c.get("/ui/networks?min_size=50").text


def test_the_graph_is_deterministic_and_escapes_labels() -> None:
    t = datetime(2026, 5, 1, tzinfo=UTC)
    members = [
        NetworkAd("<b>ad</b>", "text", (("phone", "+12025550143"),), location="A & B",
                  posted_at=t),
        NetworkAd("two", "text", (("phone", "+12025550143"),), location="C", posted_at=t),
        NetworkAd("three", "text", (), location=None, posted_at=None),
    ]
    links = (Link("two", "three", "text", "0.91"), Link("<b>ad</b>", "two", "phone", "x"))
    one = ads_pages.graph_svg(members, links, show_values=True, case_of={"two": 7})
    assert one == ads_pages.graph_svg(members, links, show_values=True, case_of={"two": 7})
    assert "<b>" not in one and "&lt;b&gt;ad&lt;/b&gt;" in one and "A &amp; B" in one
    assert 'href="/ui/cases/7"' in one and "+12025550143 (2 ads)" in one
    assert "text link two - three (0.91)" in one
    hidden = ads_pages.graph_svg(members, links, show_values=False, case_of={})
    assert "+12025550143" not in hidden and "phone 1 (2 ads)" in hidden
    few = ads_pages.graph_svg(members, links, show_values=True, case_of={}, max_ads=2)
    assert "1 later ads not drawn" in few and "three" not in few.split("</desc>")[1]
    line = ads_pages.timeline_svg(members, ("A & B", "C"))
    assert line.count("<circle") == 2 and "1 undated ads not drawn" in line
    assert "A &amp; B" in line


def test_a_single_ad_network_page_and_a_corrupt_store_in_the_case_box(site: Site) -> None:
    lone = site.post_ad("lone", "Piano lessons for beginners, call 202 555 0199",
                        "Austin, TX", 2)
    c = site.client("reviewer")
    page = c.get(f"/ui/networks/{lone['network_id']}")
    assert page.status_code == 200
    assert "No template: fewer than two ads with text." in page.text
    assert "Austin, TX: 2026-05-02 10:00 (1 ad)" in page.text
    from types import SimpleNamespace

    from bastion.store.models_ads import StoredAd
    from bastion.trafficking.adstore import AdRepository

    with site.db.write() as s:
        s.add(StoredAd(ad_id="broken", text="x", pdq=[], score=0.5,
                       result={"indicators": [{"id": "no-span"}]}, source="test"))
    with site.db.read() as s:
        got = ads_pages.network_box(s, SimpleNamespace(content_id="broken"),
                                    AdRepository(site.db))
    assert got == {"ad_network": {"error": "stored ad 'broken' is corrupt: 'span'"}}
