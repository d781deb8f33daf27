"""GET /v1/retrohunt: matches found later in logged content, read with a cursor; the
content's history shows them."""

from __future__ import annotations

from sqlalchemy import select
from tests.api.conftest import IMAGES, Api

from bastion.store import bank_repository as repo
from bastion.store.content_log import RetrohuntMatchIn, find_exact, record_retrohunt_matches
from bastion.store.models import BankEntry
from bastion.store.records import EntryRecord


def test_retrohunt_results_after_cursor(api: Api) -> None:
    data = (IMAGES / "reg-test-input" / "labelme-subset" / "q0004.jpg").read_bytes()
    v = api.client.post("/v1/content", headers=api.h("content:submit"),
                        files={"file": ("a.jpg", data)}, data={"content_id": "early"}).json()
    assert v["status"] == "no_match"
    md5 = next(s["value"] for s in v["signals"] if s["signal_type"] == "md5")
    r = api.client.post("/v1/banks/sample/entries", headers=api.h("banks:write"),
                        json={"entries": [{"signal_type": "md5", "value": md5}]})
    assert r.status_code == 201
    # The retro-hunt job (the scan service's) stores what it finds; here, by hand.
    with api.db.write() as s:
        bank = repo.get_bank(s, "sample")
        entry = s.execute(select(BankEntry).where(BankEntry.value_key == md5)).scalar_one()
        logged = find_exact(s, "md5", [md5])
        assert [x.content_id for x in logged] == ["early"]
        record_retrohunt_matches(s, [RetrohuntMatchIn(
            logged[0], EntryRecord.from_row(entry), bank.name, 0)])
    h = api.h("content:read")
    r = api.client.get("/v1/retrohunt", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert [x["content_id"] for x in body["results"]] == ["early"]
    assert body["results"][0]["distance"] == 0
    r2 = api.client.get("/v1/retrohunt", headers=h, params={"cursor": body["cursor"]}).json()
    assert r2["results"] == [] and r2["cursor"] == body["cursor"]
    assert api.client.get("/v1/retrohunt", headers=h,
                          params={"cursor": "garbage"}).status_code == 422
    hist = api.client.get("/v1/content/early", headers=h).json()["history"]
    assert [e["event"] for e in hist] == ["submitted", "retrohunt_match"]
