"""Bank routes: create, read, change, delete; entries as fields or a file; export only
for exportable banks; every write audited."""

from __future__ import annotations

from tests.api.conftest import BRIDGE, Api

from bastion.store.audit import list_audit_events

PDQ = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def test_bank_lifecycle_and_audit(api: Api) -> None:
    w, r_ = api.h("banks:write"), api.h("banks:read")
    r = api.client.post("/v1/banks", headers=w, json={"name": "partner", "label": "csam",
                                                      "thresholds": {"pdq": 20}})
    assert r.status_code == 201 and r.json()["thresholds"] == {"pdq": 20}
    assert api.client.post("/v1/banks", headers=w, json={"name": "bad name!"}).status_code == 422
    r = api.client.post("/v1/banks/partner/entries", headers=w, json={"entries": [
        {"signal_type": "pdq", "value": PDQ.upper(), "classification": "A2"},
        {"signal_type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"},  # empty file
        {"signal_type": "pdq", "value": "0" * 64},
    ]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert [e["value"] for e in body["added"]] == [PDQ]
    assert sorted(i["line"] for i in body["issues"] if i["kind"] == "rejected") == [2, 3]
    entry_id = body["added"][0]["id"]
    got = api.client.get(f"/v1/banks/partner/entries/{entry_id}", headers=r_).json()
    assert got["classification"] == "A2"
    r = api.client.patch(f"/v1/banks/partner/entries/{entry_id}", headers=w,
                         json={"enabled": False, "disabled_until": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["enabled"] is False
    listed = api.client.get("/v1/banks/partner/entries", headers=r_).json()
    assert [e["id"] for e in listed["entries"]] == [entry_id]
    r = api.client.post("/v1/banks/partner/entries", headers=w,
                        files={"file": ("b.jpg", BRIDGE.read_bytes())})
    assert r.status_code == 201, r.text
    kinds = {e["signal_type"] for e in r.json()["added"]}
    assert {"md5", "sha1", "sha256"} <= kinds
    r = api.client.get("/v1/banks/partner/export", headers=api.h("banks:export"))
    assert r.status_code == 403
    api.client.patch("/v1/banks/partner", headers=w, json={"exportable": True})
    r = api.client.get("/v1/banks/partner/export?format=jsonl", headers=api.h("banks:export"))
    assert r.status_code == 200 and PDQ in r.text
    assert api.client.delete(f"/v1/banks/partner/entries/{entry_id}",
                             headers=w).status_code == 200
    assert api.client.get(f"/v1/banks/partner/entries/{entry_id}",
                          headers=r_).status_code == 404
    assert api.client.delete("/v1/banks/partner", headers=w).status_code == 200
    assert api.client.get("/v1/banks/partner", headers=r_).status_code == 404
    with api.db.read() as s:
        actions = [e.action for e in list_audit_events(s, limit=100)]
    for action in ("bank.create", "bank.entries.add", "bank.entry.update", "bank.update",
                   "bank.export.denied", "bank.export", "bank.entry.delete", "bank.delete"):
        assert action in actions, action
    with api.db.read() as s:
        actors = {e.actor for e in list_audit_events(s, action="bank.create")}
    assert all(a.startswith("api-key:") for a in actors)


def test_out_of_range_entry_ids_are_422_not_500(api: Api) -> None:
    h = api.h("admin")
    for entry_id in ("9223372036854775808", "99999999999999999999999999", "0", "-1"):
        url = f"/v1/banks/sample/entries/{entry_id}"
        for method, kwargs in (("GET", {}), ("DELETE", {}),
                               ("PATCH", {"json": {"enabled": False}})):
            r = api.client.request(method, url, headers=h, **kwargs)
            assert r.status_code == 422, (method, entry_id, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    r = api.client.get("/v1/banks/sample/entries?after_id=9223372036854775808", headers=h)
    assert r.status_code == 422
    # the largest valid id is simply not found
    r = api.client.get("/v1/banks/sample/entries/9223372036854775807", headers=h)
    assert r.status_code == 404
