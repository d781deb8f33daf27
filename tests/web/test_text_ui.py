"""The case page's text view in-process: a text item with keyword and URL matches and a
classified ad submitted through the API, their case pages showing the kept text with each
span in a ``<mark>`` (code points, after emoji, combining marks and right-to-left text),
the ad's indicators with weights and sources, its contacts and network link; reading the
text audited; auditors see the facts but no text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.web.helpers import UiClients

from bastion.api.app import create_app
from bastion.apikeys import service as keys
from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.config import load_settings
from bastion.store.audit import list_audit_events
from bastion.store.database import Database
from bastion.users import service as users

PW = "a long enough password"
SECRET = "harbour-lantern-7d1e"
#: Keyword and URL rules open cases; so does an ad scoring 0.2 or more.
POLICY = {"rules": [
    {"name": "keyword_case", "when": {"signal_type": ["keyword"]}, "decision": "hold",
     "open_case": True, "priority": 40},
    {"name": "risky_ad", "when": {"min_indicator": {"ads_score": 0.2}}, "decision": "hold",
     "open_case": True, "priority": 50},
    {"name": "match", "when": {"status": ["match"]}, "decision": "hold", "open_case": True,
     "priority": 60},
]}
#: Emoji (astral, a ZWJ sequence) before the spans, a combining accent inside one,
#: Hebrew (right to left), a zero-width space, and a defanged listed URL.
TEXT = ("\U0001F600\U0001F469\u200d\U0001F4BB "
        "\u05e9\u05dc\u05d5\u05dd EXAMPLE and e\u0301xample, exa\u200bmple, "
        f"see hxxp://bad[.]example/gallery/7 {SECRET}")
AD_TITLE = "New in town \U0001F600"
AD_TEXT = ("\U0001F339\U0001F339 Call two one three 555 oh one two three now. "
           f"Discreet and professional. {SECRET}")


class Ui(UiClients):
    def __init__(self, db: Database, tmp_path: Path) -> None:
        self.db = db
        self.settings = load_settings(
            environ={"BASTION_MASTER_KEY": "cd" * 32}, home=tmp_path / "home",
            decode_workers=0, review={"secure_cookies": False}, policy=POLICY)
        with db.write() as s:
            self.key = keys.create(s, name="t", scopes=["admin"])[1]
            for role in ("reviewer", "auditor", "admin"):
                users.create(s, name=role, role=role, password=PW, actor="test")
            banks.create(s, data=BankCreate(name="urls", label="csam"))
            banks.add_entry(s, name="urls", fields={
                "signal_type": "url", "value": "bad.example/gallery", "match": "prefix"})
            banks.create(s, data=BankCreate(name="keywords", label="csam"))
            for word in ("example", "\u05e9\u05dc\u05d5\u05dd"):
                banks.add_entry(s, name="keywords", fields={"signal_type": "keyword",
                                                            "value": word})
        self.clients: list[TestClient] = []
        self.app = create_app(self.settings, db=db)

    def submit(self, c: TestClient, body: dict[str, Any]) -> dict[str, Any]:
        self.wait_ready(c)
        r = c.post("/v1/content", headers={"Authorization": f"Bearer {self.key}"}, json=body)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


@pytest.fixture
def ui(db: Database, tmp_path: Path) -> Iterator[Ui]:
    made = Ui(db, tmp_path)
    yield made
    made.close()


_MARK = re.compile(r'<mark class="([^"]+)" title="([^"]*)" data-refs="([^"]*)">(.*?)</mark>',
                   re.S)


def _field(page: str, field: str) -> str:
    m = re.search(rf'<div class="item-text[^"]*" id="field-{field}"[^>]*>(.*?)</div>', page,
                  re.S)
    assert m, f"no {field} field in the page"
    return m.group(1)


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _marks(fragment: str) -> list[tuple[str, str, str]]:
    """``(classes, title, text)`` of each mark (invisible-character tokens as text)."""
    return [(m.group(1), html.unescape(m.group(2)), _plain(m.group(4)))
            for m in _MARK.finditer(fragment)]


def _by_ref(fragment: str) -> dict[str, str]:
    """The highlighted text of each span ref: its runs joined (overlaps cut a span into
    several runs)."""
    out: dict[str, str] = {}
    for m in _MARK.finditer(fragment):
        for ref in m.group(3).split():
            out[ref] = out.get(ref, "") + _plain(m.group(4))
    return out


def test_text_matches_are_highlighted_on_the_case_page(ui: Ui) -> None:
    c = ui.client("reviewer")
    v = ui.submit(c, {"content_id": "post-1", "user_id": "u-1", "text": TEXT})
    assert v["status"] == "match" and v["case_id"] is not None
    spans = {m["matched"]: m["span"] for m in v["matches"] if "span" in m}
    page = c.get(f"/ui/cases/{v['case_id']}")
    assert page.status_code == 200
    body = _field(page.text, "text")
    # The field shows the whole text, with the zero-width space as a visible token.
    assert _plain(body) == TEXT.replace("\u200b", "U+200B")
    marks = _marks(body)
    shown = [t for _c, _t, t in marks]
    assert "EXAMPLE" in shown and "\u05e9\u05dc\u05d5\u05dd" in shown
    assert "e\u0301xample" in shown  # the combining accent inside its highlight
    assert "exaU+200Bmple" in shown
    # The listed URL holds the keyword "example": the overlap cuts it into runs, and the
    # runs of its span still spell the whole URL.
    assert "hxxp://bad[.]example/gallery/7" in _by_ref(body).values()
    assert "example" in shown
    # Each mark is where the verdict's code-point span says (after the astral emoji).
    for matched, (a, b) in spans.items():
        assert TEXT[a:b] == matched
    kinds = {t: cls for cls, _title, t in marks}
    assert "hl-keyword" in kinds["EXAMPLE"] and "hl-url" in kinds["hxxp://bad[.]"]
    assert kinds["example"] == "hl hl-url hl-keyword hl-overlap"
    title = next(tt for _c, tt, t in marks if t == "EXAMPLE")
    assert "keyword in bank keywords" in title and "entry example (word)" in title
    assert 'dir="auto"' in page.text and "style=" not in page.text
    # The span list names bank, entry and offsets.
    a, b = spans["EXAMPLE"]
    assert f"text {a}-{b}" in page.text
    with ui.db.read() as s:
        ev = [(e.actor, e.object_id, e.detail or {})
              for e in list_audit_events(s, action="case.text_view")]
    assert [(actor, oid, d.get("source")) for actor, oid, d in ev] == [
        ("user:1", str(v["case_id"]), "vault")]
    assert SECRET not in str(ev)


def test_an_ad_shows_indicators_contacts_score_and_its_network(ui: Ui) -> None:
    c = ui.client("reviewer")
    v = ui.submit(c, {"content_id": "ad-1", "user_id": "u-2", "title": AD_TITLE,
                      "text": AD_TEXT, "location": "Houston, TX"})
    assert v["case_id"] is not None, v
    assert v["network_id"] and v["score"] >= 0.2
    page = c.get(f"/ui/cases/{v['case_id']}").text
    marks = _marks(_field(page, "text"))
    phone = next(ct for ct in v["contacts"] if ct["kind"] == "phone")
    assert phone["disguised"] and phone["value"].startswith("+1")
    a, b = phone["span"]
    assert AD_TEXT[a:b] == phone["raw"]
    # The obscured-phone indicator and the phone contact overlap: one run carries both.
    over = [(cls, t) for cls, _title, t in marks if "hl-overlap" in cls]
    assert any("hl-contact" in cls and "hl-indicator" in cls for cls, _t in over)
    assert "".join(t for cls, t in ((m[0], m[2]) for m in marks)
                   if "hl-contact" in cls) == phone["raw"]
    assert [t for cls, _tt, t in marks if "hl-indicator" in cls][:1] == ["\U0001F339"]
    # Title spans (movement language: not predictive, weight below zero).
    tmarks = _marks(_field(page, "title"))
    assert [(t, "hl-counter" in cls) for cls, _tt, t in tmarks] == [("New in town", True)]
    assert "weight -1.204" in tmarks[0][1] and "source:" in tmarks[0][1]
    # Indicators with weights and sources, contacts with value, raw text and disguise.
    assert 'id="ad-indicators"' in page and "Lugo-Graulich" in page
    assert f"<code>{phone['value']}</code>" in page
    assert html.escape(phone["raw"]) in page
    assert f'href="/ui/networks/{v["network_id"]}"' in page
    assert f'{v["score"]:.3f}' in page


def test_auditors_see_the_facts_but_not_the_text(ui: Ui) -> None:
    rc = ui.client("reviewer")
    v = ui.submit(rc, {"content_id": "post-2", "text": TEXT})
    ad = ui.submit(rc, {"content_id": "ad-2", "title": AD_TITLE, "text": AD_TEXT})
    c = ui.client("auditor")
    page = c.get(f"/ui/cases/{v['case_id']}").text
    assert 'id="text-hidden"' in page and 'id="field-text"' not in page
    assert SECRET not in page and "EXAMPLE" not in page and "<th scope=\"col\">Matched" not in page
    assert "keyword in bank keywords" in page  # the facts are there
    adp = c.get(f"/ui/cases/{ad['case_id']}").text
    phone = next(ct for ct in ad["contacts"] if ct["kind"] == "phone")
    assert SECRET not in adp and phone["value"] not in adp and phone["raw"] not in adp
    assert "obscured-phone" in adp and "Lugo-Graulich" in adp
    with ui.db.read() as s:
        assert len(list_audit_events(s, action="case.text_view")) == 0


def test_a_clean_flagged_item_says_no_text_was_kept(ui: Ui) -> None:
    rc = ui.client("reviewer")
    v = ui.submit(rc, {"content_id": "post-3", "user_id": "u-3", "text": f"hello {SECRET}"})
    assert v["status"] == "no_match" and v["case_id"] is None
    r = rc.post("/v1/flags", headers={"Authorization": f"Bearer {ui.key}"},
                json={"content_id": "post-3", "reporter": "user:9", "reason": "spam"})
    assert r.status_code in (200, 201), r.text
    case_id = r.json()["id"]
    page = rc.get(f"/ui/cases/{case_id}").text
    assert SECRET not in page
    # No matches, no ad and nothing kept: the section is left out.
    assert 'id="text-view"' not in page


def test_a_flagged_ad_without_kept_text_shows_its_ads_row(ui: Ui) -> None:
    rc = ui.client("reviewer")
    text = f"Blue bicycle for sale, ask at the shop. {SECRET}"
    v = ui.submit(rc, {"content_id": "ad-3", "title": "Bicycle", "text": text,
                       "location": "Leeds"})
    assert v["case_id"] is None and v["score"] < 0.2  # nothing kept: no case, no match
    r = rc.post("/v1/flags", headers={"Authorization": f"Bearer {ui.key}"},
                json={"content_id": "ad-3", "reporter": "user:9", "reason": "odd"})
    case_id = r.json()["id"]
    page = rc.get(f"/ui/cases/{case_id}").text
    assert _plain(_field(page, "text")) == text and _plain(_field(page, "title")) == "Bicycle"
    assert 'id="ad-score"' in page
    with ui.db.read() as s:
        ev = [(e.object_id, (e.detail or {}).get("source"))
              for e in list_audit_events(s, action="case.text_view")]
    assert ev == [(str(case_id), "ads")]


def test_an_unreadable_kept_text_is_said_not_a_server_error(ui: Ui) -> None:
    from bastion.evidence.texts import find_text

    c = ui.client("reviewer")
    v = ui.submit(c, {"content_id": "post-4", "text": TEXT})
    with ui.db.read() as s:
        item = find_text(s, "post-4")
        assert item is not None
        path = ui.settings.home.resolve() / "evidence" / item.file_name
    path.write_bytes(b"\0" * path.stat().st_size)  # tampered with: the GCM tag fails
    page = c.get(f"/ui/cases/{v['case_id']}")
    assert page.status_code == 200
    assert 'id="text-unreadable"' in page.text and "integrity check" in page.text
    assert 'id="field-text"' not in page.text and "keyword in bank keywords" in page.text
    with ui.db.read() as s:  # nothing was read, so nothing is audited as read
        assert len(list_audit_events(s, action="case.text_view")) == 0
