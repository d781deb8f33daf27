"""POST /v1/content, GET /v1/content/{id}, POST /v1/hash, POST /v1/match, the batch route,
against the sample bank (the benign bridge photo)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import func, select
from tests.api.conftest import BRIDGE, IMAGES, Api

from bastion.scan.service import MatchService
from bastion.store.models_api import ContentVerdict

UNRELATED = IMAGES / "reg-test-input" / "labelme-subset" / "q0003.jpg"


def _post_file(api: Api, data: bytes, content_id: str, **fields: str) -> Any:
    return api.client.post(
        "/v1/content", headers=api.h("content:submit"),
        files={"file": ("upload.bin", data)}, data={"content_id": content_id, **fields},
    )


def _key(m: dict[str, Any]) -> tuple[Any, ...]:
    return (m["bank"], m["entry_id"], m["signal_type"], m["distance"], m.get("transform"))


def test_bridge_and_its_edits_match_unrelated_photo_does_not(api: Api) -> None:
    cases = {
        "bridge-mods/aaa-orig.jpg": "original",
        "reg-test-input/dih/bridge-2-rotate-90.jpg": "rot270",  # the query turned back
        "reg-test-input/dih/bridge-5-flipx.jpg": "flipx",
        "bridge-mods/blur-a-lot.jpg": None,
        "bridge-mods/shrink-a-lot.jpg": None,
        "hasher-edge-cases/letterboxed_sample-b.jpg": "original",  # through `trimmed`
    }
    for i, (rel, transform) in enumerate(cases.items()):
        r = _post_file(api, (IMAGES / rel).read_bytes(), f"edit-{i}")
        assert r.status_code == 200, r.text
        v = r.json()
        assert v["status"] == "match", rel
        pdq = [m for m in v["matches"] if m["signal_type"] == "pdq"]
        assert pdq, rel
        assert all(isinstance(m["distance"], int) and 0 <= m["distance"] <= 31 for m in pdq)
        assert all(m["bank"] == "sample" for m in pdq)
        if transform is not None:
            assert pdq[0]["transform"] == transform, (rel, pdq)
        assert v["decision"] == "hold"  # the sample bank is not auto_action
        assert v["case_id"] is not None and v["actions"] == []  # a case; nothing before review
    r = _post_file(api, UNRELATED.read_bytes(), "unrelated")
    v = r.json()
    assert v["status"] == "no_match" and v["matches"] == []
    assert v["decision"] == "allow"
    assert {s["signal_type"] for s in v["signals"]} >= {"md5", "sha1", "sha256", "pdq"}


def test_truncated_jpeg_is_not_scanned_but_its_md5_still_matches(api: Api) -> None:
    truncated = BRIDGE.read_bytes()[:5000]
    r = _post_file(api, truncated, "trunc-1")
    assert r.status_code == 200
    v = r.json()
    assert v["status"] == "not_scanned" and v["reason"]
    assert v["decision"] == "hold"
    md5 = hashlib.md5(truncated).hexdigest()
    assert {"signal_type": "md5", "value": md5} in [
        {"signal_type": s["signal_type"], "value": s["value"]} for s in v["signals"]
    ]
    r = api.client.post("/v1/banks/sample/entries", headers=api.h("banks:write"),
                        json={"entries": [{"signal_type": "md5", "value": md5}]})
    assert r.status_code == 201, r.text
    deadline_ok = False
    for _ in range(50):  # the change log is followed every 0.2 s
        v = _post_file(api, truncated + b"", f"trunc-{_ + 2}").json()
        if v["status"] == "match":
            deadline_ok = True
            break
        import time

        time.sleep(0.1)
    assert deadline_ok
    assert v["reason"]  # still says its pixels could not be decoded
    assert [m["signal_type"] for m in v["matches"]] == ["md5"]


def test_auto_action_exact_match_blocks(api: Api) -> None:
    h = api.h("banks:write")
    assert api.client.post("/v1/banks", headers=h, json={
        "name": "verified", "label": "csam", "auto_action": True}).status_code == 201
    md5 = hashlib.md5(BRIDGE.read_bytes()).hexdigest()
    api.client.post("/v1/banks/verified/entries", headers=h,
                    json={"entries": [{"signal_type": "md5", "value": md5,
                                       "classification": "A1"}]})
    import time

    for i in range(50):
        v = _post_file(api, BRIDGE.read_bytes(), f"blocked-{i}").json()
        if any(m["bank"] == "verified" for m in v["matches"]):
            break
        time.sleep(0.1)
    assert v["decision"] == "block"
    assert v["decision_rule"] == "auto_action_strong_match"


def test_signals_only_give_the_same_matches(api: Api) -> None:
    v = _post_file(api, BRIDGE.read_bytes(), "as-file").json()
    sigs = [{"signal_type": s["signal_type"], "value": s["value"]} for s in v["signals"]]
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        json={"content_id": "as-signals", "signals": sigs})
    assert r.status_code == 200, r.text
    w = r.json()
    assert sorted(map(_key, w["matches"])) == sorted(map(_key, v["matches"]))
    assert w["status"] == "match"


def test_same_content_id_twice_is_one_record_and_different_content_conflicts(api: Api) -> None:
    data = UNRELATED.read_bytes()
    first = _post_file(api, data, "post-1", user_id="u1").json()
    again = _post_file(api, data, "post-1", user_id="u1").json()
    assert again["replayed"] is True and first["replayed"] is False
    assert again["submitted_at"] == first["submitted_at"]
    assert again["signals"] == first["signals"]
    with api.db.read() as s:
        n = s.execute(select(func.count()).select_from(ContentVerdict)
                      .where(ContentVerdict.content_id == "post-1")).scalar_one()
    assert n == 1
    r = _post_file(api, BRIDGE.read_bytes(), "post-1")
    assert r.status_code == 409
    assert r.json()["type"] == "urn:bastion:problem:conflict"
    got = api.client.get("/v1/content/post-1", headers=api.h("content:read"))
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "no_match"
    assert [h["event"] for h in body["history"]] == ["submitted"]
    assert api.client.get("/v1/content/nope", headers=api.h("content:read")).status_code == 404


def test_validation_errors_name_the_field(api: Api) -> None:
    h = api.h("content:submit")
    r = api.client.post("/v1/content", headers=h, files={"file": ("a", b"x")})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "content_id"
    r = api.client.post("/v1/content", headers=h, json={
        "content_id": "a", "signals": [{"signal_type": "pdq", "value": "zz"}]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "signals[0].value"
    r = api.client.post("/v1/content", headers=h, json={"content_id": "a"})
    assert r.status_code == 422
    r = api.client.post("/v1/content", headers=h, json={
        "content_id": "a", "uploaded_at": "2024-01-01T00:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "uploaded_at"
    r = api.client.post("/v1/content", headers={**h, "content-type": "application/json"},
                        content=b"{not json")
    assert r.status_code == 400
    assert r.json()["type"] == "urn:bastion:problem:bad-request"
    r = api.client.post("/v1/content", headers={**h, "content-type": "multipart/form-data"},
                        content=b"x")
    assert r.status_code == 400
    r = api.client.post("/v1/content", headers=h, json={"content_id": "f",
                                                        "fetch_url": "https://example.com/"})
    assert r.status_code == 422  # fetching is off by default
    assert r.json()["type"] == "urn:bastion:problem:fetch-refused"


def test_upload_over_the_byte_limit_is_413_from_length_and_while_streaming(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(api_max_upload_bytes=100_000)
    big = b"\xff\xd8\xff" + b"\0" * 300_000
    r = _post_file(api, big, "big")
    assert r.status_code == 413
    assert r.json()["type"] == "urn:bastion:problem:payload-too-large"

    boundary = "XyZ"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content_id\"\r\n\r\nc\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"a\"\r\n\r\n").encode()
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        nonlocal sent
        yield head
        for _ in range(1000):
            sent += 65536
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = api.client.post(
        "/v1/content", headers={**api.h("content:submit"),
                                "content-type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert r.status_code == 413
    assert r.json()["type"] == "urn:bastion:problem:payload-too-large"


def test_matching_answers_503_while_indexes_load(make_api: Callable[..., Api]) -> None:
    api0 = make_api(wait=False)
    loading = MatchService(api0.db)  # never started: still loading
    api = make_api(wait=False, sample=False, app_kwargs={"matcher": loading})
    r = api.client.post("/v1/match", headers=api.h("match"),
                        json={"signals": [{"type": "md5", "value": "a" * 32}]})
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["type"] == "urn:bastion:problem:not-ready"
    r = _post_file(api, BRIDGE.read_bytes(), "while-loading")
    assert r.status_code == 503
    assert api.client.get("/readyz").status_code == 503
    loading.start(background=False, follow=False)
    assert api.client.get("/readyz").status_code == 200
    r = api.client.post("/v1/match", headers=api.h("match"),
                        json={"signals": [{"type": "md5", "value": "a" * 32}]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "no_match"


def test_match_bare_signals_with_dihedral_variants(api: Api) -> None:
    rot90 = "f0a10efd51c83d429053d48d0fffbc52e34e0e17ada956a9d29685211ea9e58f"
    md5 = hashlib.md5(BRIDGE.read_bytes()).hexdigest()
    r = api.client.post("/v1/match", headers=api.h("match"), json={"signals": [
        {"type": "pdq", "value": rot90},
        {"signal_type": "md5", "value": md5.upper()},
        {"type": "sha1", "value": "0" * 40},
    ]})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["status"] == "match"
    assert res[0]["matches"][0]["transform"] != "original"
    assert isinstance(res[0]["matches"][0]["distance"], int)
    assert res[1]["status"] == "match" and res[1]["value"] == md5
    assert res[2]["status"] == "no_match"
    too_many = [{"type": "md5", "value": md5}] * 1001
    r = api.client.post("/v1/match", headers=api.h("match"), json={"signals": too_many})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "signals"


def test_hash_stores_nothing(api: Api) -> None:
    r = api.client.post("/v1/hash", headers=api.h("content:submit"),
                        files={"file": ("b.jpg", BRIDGE.read_bytes())})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "hashed"
    assert any(s["signal_type"] == "pdq" for s in body["signals"])
    with api.db.read() as s:
        assert s.execute(select(func.count()).select_from(ContentVerdict)).scalar_one() == 0


def test_batch_gives_per_item_results(api: Api) -> None:
    md5 = hashlib.md5(BRIDGE.read_bytes()).hexdigest()
    r = api.client.post("/v1/content:batch", headers=api.h("content:submit"), json={"items": [
        {"content_id": "b1", "signals": [{"type": "md5", "value": md5}]},
        {"content_id": "b2", "signals": [{"type": "pdq", "value": "nothex"}]},
        {"content_id": "b3", "fetch_url": "http://127.0.0.1/x"},
        {"content_id": "b4", "signals": [{"type": "sha256", "value": "1" * 64}]},
        "not an object",
    ]})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["ok"] for x in res] == [True, False, False, True, False]
    assert res[0]["verdict"]["status"] == "match"
    assert res[1]["problem"]["errors"][0]["field"] == "signals[0].value"
    assert res[2]["problem"]["status"] == 422
    assert res[3]["verdict"]["status"] == "no_match"
    r = api.client.post("/v1/content:batch", headers=api.h("content:submit"),
                        json={"items": [{"content_id": "x"}] * 101})
    assert r.status_code == 422


def test_multipart_boundary_is_case_sensitive(api: Api) -> None:
    body = (b"--BenchBoundary\r\nContent-Disposition: form-data; name=\"content_id\"\r\n\r\n"
            b"mixed-case\r\n--BenchBoundary\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"b.jpg\"\r\n\r\n" + BRIDGE.read_bytes() + b"\r\n--BenchBoundary--\r\n")
    r = api.client.post("/v1/content", content=body, headers={
        **api.h("content:submit"), "content-type": "multipart/form-data; boundary=BenchBoundary"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "match"


def test_publicly_available_is_kept_from_multipart_and_json(api: Api) -> None:
    h = api.h("content:submit")
    r = api.client.post("/v1/content", headers=h, files={"file": ("b.jpg", BRIDGE.read_bytes())},
                        data={"content_id": "pub-1", "publicly_available": "true"})
    assert r.status_code == 200, r.text
    r = api.client.post("/v1/content", headers=h, json={
        "content_id": "pub-2", "publicly_available": False,
        "signals": [{"type": "md5", "value": "0" * 32}]})
    assert r.status_code == 200, r.text
    r = api.client.post("/v1/content", headers=h, files={"file": ("b.jpg", BRIDGE.read_bytes())},
                        data={"content_id": "pub-3", "publicly_available": "perhaps"})
    assert r.status_code == 422 and "publicly_available" in r.text
    with api.db.read() as s:
        meta = dict(s.execute(select(ContentVerdict.content_id, ContentVerdict.meta)).all())
    assert meta["pub-1"]["publicly_available"] is True
    assert meta["pub-2"]["publicly_available"] is False


def test_get_content_says_where_the_item_stands_after_review(api: Api) -> None:
    from bastion.cases import service as cases
    from bastion.policy.rules import load_policy
    from bastion.users import service as users

    r = _post_file(api, BRIDGE.read_bytes(), "stand-1", user_id="u-1")
    assert r.status_code == 200 and r.json()["case_id"], r.text
    case_id = int(r.json()["case_id"])
    got = api.client.get("/v1/content/stand-1", headers=api.h("content:read")).json()
    assert got["current"]["cases"][0]["state"] != "decided"
    with api.db.write() as s:
        rid = users.create(s, name="rev", role="reviewer", password="a long enough password",
                           actor="t").id
    with api.db.write() as s:
        cases.claim(s, case_id=case_id, reviewer=rid, settings=api.settings)
        cases.decide(s, case_id=case_id, reviewer=rid, decision="csam", classification="A1",
                     policy=load_policy({}), settings=api.settings)
    got = api.client.get("/v1/content/stand-1", headers=api.h("content:read")).json()
    assert got["decision"] == r.json()["decision"]  # the verdict as decided at submission
    (case,) = got["current"]["cases"]
    assert case["case_id"] == str(case_id) and case["decision"] == "csam"
    assert case["classification"] == "A1" and case["decided_at"]
    kinds = [a["kind"] for a in got["current"]["actions"]]
    assert "takedown" in kinds and all(a["state"] for a in got["current"]["actions"])
    # a POST retry answers the stored verdict, without the GET-only state
    assert "current" not in _post_file(api, BRIDGE.read_bytes(), "stand-1",
                                       user_id="u-1").json()
