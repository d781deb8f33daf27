"""The review UI in-process: sign-in, roles, CSRF, signed-out sessions, blurred previews,
single-use audited reveals, decisions leaving the queue, lock-out."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.web.helpers import UiClients, form_token, sign_in

from bastion.api.app import create_app
from bastion.apikeys import service as keys
from bastion.banks.sample import create_sample_bank
from bastion.config import load_settings
from bastion.store.audit import list_audit_events
from bastion.store.database import Database
from bastion.users import service as users

BRIDGE = (Path(__file__).resolve().parents[2].parent
          / "shared/data/images/bridge-mods/aaa-orig.jpg")
PW = "a long enough password"


class Ui(UiClients):
    def __init__(self, db: Database, tmp_path: Path, **review: Any) -> None:
        self.db = db
        self.settings = load_settings(
            environ={"BASTION_MASTER_KEY": "ab" * 32}, home=tmp_path / "home",
            decode_workers=0, review={"secure_cookies": False, **review})
        with db.write() as s:
            create_sample_bank(s)
            self.key = keys.create(s, name="t", scopes=["admin"])[1]
            for role in ("reviewer", "auditor", "admin"):
                users.create(s, name=role, role=role, password=PW, actor="test")
            users.create(s, name="reviewer2", role="reviewer", password=PW, actor="test")
        self.clients: list[TestClient] = []
        self.app = create_app(self.settings, db=db)

    def upload(self, c: TestClient, content_id: str = "post-1") -> dict[str, Any]:
        self.wait_ready(c)
        r = c.post("/v1/content", headers={"Authorization": f"Bearer {self.key}"},
                   files={"file": ("x.jpg", BRIDGE.read_bytes(), "image/jpeg")},
                   data={"content_id": content_id, "user_id": "user-7"})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out


@pytest.fixture
def ui(db: Database, tmp_path: Path) -> Iterator[Ui]:
    made = Ui(db, tmp_path)
    yield made
    made.close()


def _signed_in(ui: Ui, name: str) -> TestClient:
    c = ui.client()
    r = sign_in(c, name, PW)
    assert r.status_code == 303 and r.headers["location"] == "/ui/queue", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return c


def test_reviewer_path(ui: Ui) -> None:
    c = _signed_in(ui, "reviewer")
    verdict = ui.upload(c)
    case_id = verdict["case_id"]
    q = c.get("/ui/queue")
    assert q.status_code == 200 and f"/ui/cases/{case_id}" in q.text
    page = c.get(f"/ui/cases/{case_id}")
    assert page.status_code == 200 and f"/ui/media/{case_id}/preview" in page.text
    assert "sample" in page.text and "original" in page.text  # bank and transform
    prev = c.get(f"/ui/media/{case_id}/preview")
    assert prev.headers["content-type"] == "image/jpeg"
    assert "no-store" in prev.headers["cache-control"]
    img = Image.open(io.BytesIO(prev.content))
    assert img.mode == "L" and prev.content != BRIDGE.read_bytes()
    csrf = form_token(page.text)
    assert c.post(f"/ui/cases/{case_id}/reveal", data={}).status_code == 403
    assert c.post(f"/ui/cases/{case_id}/reveal", data={"csrf": "forged"}).status_code == 403
    r = c.post(f"/ui/cases/{case_id}/reveal", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    shown = c.get(r.headers["location"])
    token_url = shown.text.split('id="revealed" src="')[1].split('"')[0]
    full = c.get(token_url)
    assert full.status_code == 200 and Image.open(io.BytesIO(full.content)).mode == "RGB"
    assert "no-store" in full.headers["cache-control"]
    assert c.get(token_url).status_code == 404  # single use
    with ui.db.read() as s:
        reveals = list_audit_events(s, action="case.reveal")
        assert [(e.actor, e.object_id) for e in reveals] == [("user:1", str(case_id))]
        from bastion.cases import service as cases

        assert cases.revealed_cases(s, case_ids=[int(case_id), 999]) == {int(case_id)}
    r = c.post(f"/ui/cases/{case_id}/decide",
               data={"csrf": csrf, "decision": "not_violating"}, follow_redirects=False)
    assert r.status_code == 303
    assert f"/ui/cases/{case_id}" not in c.get("/ui/queue").text
    banks_page = c.get("/ui/banks").text  # the false-positive vote is visible
    assert 'id="fp-votes"' in banks_page and "<td>sample</td>" in banks_page
    # a reviewer cannot open admin or audit pages
    assert c.get("/ui/admin").status_code == 403
    assert c.get("/ui/audit").status_code == 403


def test_auditor_sees_no_media(ui: Ui) -> None:
    rc = _signed_in(ui, "reviewer")
    case_id = ui.upload(rc)["case_id"]
    c = _signed_in(ui, "auditor")
    page = c.get(f"/ui/cases/{case_id}")
    assert page.status_code == 200 and "/ui/media/" not in page.text
    assert c.get(f"/ui/media/{case_id}/preview").status_code == 403
    csrf = form_token(page.text)
    assert c.post(f"/ui/cases/{case_id}/reveal", data={"csrf": csrf}).status_code == 403
    assert c.post(f"/ui/cases/{case_id}/decide",
                  data={"csrf": csrf, "decision": "csam"}).status_code == 403
    a = c.get("/ui/audit")
    assert a.status_code == 200 and "Hash chain intact" in a.text
    adm = _signed_in(ui, "admin")
    assert "Exposure per reviewer" in adm.get("/ui/admin").text


def test_claims_keep_a_second_reviewer_off(ui: Ui) -> None:
    c1 = _signed_in(ui, "reviewer")
    case_id = ui.upload(c1)["case_id"]
    assert 'id="decide-form"' in c1.get(f"/ui/cases/{case_id}").text
    c2 = _signed_in(ui, "reviewer2")
    page = c2.get(f"/ui/cases/{case_id}")
    assert "claimed by another reviewer" in page.text and 'id="decide-form"' not in page.text


def test_unauthenticated_and_signed_out_sessions_are_refused(ui: Ui) -> None:
    anon = ui.client()
    for path in ("/ui", "/ui/queue", "/ui/cases/1", "/ui/media/1/preview", "/ui/audit",
                 "/ui/admin", "/ui/banks", "/ui/reveal/x"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in", path
    assert anon.post("/ui/cases/1/decide", data={"decision": "csam"}).status_code == 401
    assert anon.get("/ui/static/ui.css").status_code == 200
    c = _signed_in(ui, "reviewer")
    cookie = c.cookies.get("bastion_session")
    csrf = form_token(c.get("/ui/queue").text)
    assert c.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    stale = ui.client()
    stale.cookies.set("bastion_session", cookie or "", path="/ui")
    r = stale.get("/ui/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sign-in"
    # the API's key check never applies to /ui, and /ui pages carry a strict CSP
    page = ui.client().get("/ui/sign-in")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<label for="password">' in page.text


def test_wrong_passwords_lock_the_account(ui: Ui) -> None:
    c = ui.client()
    for _ in range(ui.settings.review.max_failed_logins):
        assert sign_in(c, "reviewer", "wrong wrong wrong").status_code == 401
    r = sign_in(c, "reviewer", PW)
    assert r.status_code == 401
    with ui.db.read() as s:
        failed = [e.detail for e in list_audit_events(s, action="user.login_failed")]
    assert len(failed) == ui.settings.review.max_failed_logins + 1
    assert failed[0] == {"reason": "locked"}  # the right password, refused while locked
    for _ in range(ui.settings.review.login_attempts_per_minute):
        r = sign_in(c, "nobody", PW)
    assert r.status_code == 429  # per-address rate limit


def test_flags_api_opens_a_case_in_the_queue(ui: Ui) -> None:
    c = _signed_in(ui, "reviewer")
    h = {"Authorization": f"Bearer {ui.key}"}
    r = c.post("/v1/flags", headers=h, json={"content_id": "new-9", "reporter": "report:1",
                                             "reason": "looks like a child", "user_id": "u2"})
    assert r.status_code == 200, r.text
    case = r.json()
    assert (case["source"], case["state"], case["media"]) == ("flag", "open", "none")
    assert f"/ui/cases/{case['id']}" in c.get("/ui/queue").text
    assert c.post("/v1/flags", headers=h, json={"content_id": "", "reporter": "r"}
                  ).status_code == 422
    again = c.post("/v1/flags", headers=h, json={"content_id": "new-9", "reporter": "r2"})
    assert again.json()["priority"] == case["priority"] + 5


def test_audit_events_carry_the_request_id(ui: Ui) -> None:
    c = _signed_in(ui, "reviewer")
    case_id = ui.upload(c)["case_id"]
    c.get(f"/ui/cases/{case_id}", headers={"X-Request-ID": "req-abc-1"})
    c.get(f"/ui/cases/{case_id}", headers={"X-Request-ID": "bad id with spaces"})
    with ui.db.read() as s:
        views = [e.request_id for e in list_audit_events(s, action="case.view")]
        submits = [e.request_id for e in list_audit_events(s, action="content.submit")]
    assert views[1] == "req-abc-1" and views[0] is not None and len(views[0]) == 32
    assert submits[0] is not None  # API requests too


def test_hashes_only_case_fetches_media_from_the_platform(db: Database, tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    original = BRIDGE.read_bytes()
    served: dict[str, bytes] = {"/media/hash-1": original, "/media/wrong": b"not it"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            if self.headers.get("Authorization") != "Bearer s3cret" or body is None:
                self.send_response(403 if body else 404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ui = Ui(db, tmp_path, media_endpoint=f"http://127.0.0.1:{server.server_port}"
                                         "/media/{content_id}",
            media_endpoint_token="s3cret")
    try:
        c = _signed_in(ui, "reviewer")
        hashed = ui.app.state.services.content.hash(original)
        sigs = [s.to_json() for s in hashed.signals if s.variant.kind == "stored"]
        h = {"Authorization": f"Bearer {ui.key}"}
        ids = {}
        for cid in ("hash-1", "wrong"):
            r = c.post("/v1/content", headers=h, json={"content_id": cid, "signals": sigs})
            assert r.status_code == 200, r.text
            ids[cid] = r.json()["case_id"]
        page = c.get(f"/ui/cases/{ids['hash-1']}")
        assert "hashes only" in page.text and 'id="fetch-media"' in page.text
        csrf = form_token(page.text)
        r = c.post(f"/ui/cases/{ids['hash-1']}/fetch-media", data={"csrf": csrf},
                   follow_redirects=False)
        assert r.status_code == 303
        prev = c.get(f"/ui/media/{ids['hash-1']}/preview")
        assert prev.status_code == 200 and Image.open(io.BytesIO(prev.content)).mode == "L"
        # a file that does not match the submitted hashes is refused, nothing attached
        c.get(f"/ui/cases/{ids['wrong']}")
        r = c.post(f"/ui/cases/{ids['wrong']}/fetch-media", data={"csrf": csrf})
        assert r.status_code == 502 and "does not match" in r.text
        assert c.get(f"/ui/media/{ids['wrong']}/preview").status_code == 404
    finally:
        ui.close()
        server.shutdown()


def test_admin_manages_users_reviewers_cannot(ui: Ui) -> None:
    adm = _signed_in(ui, "admin")
    csrf = form_token(adm.get("/ui/admin").text)
    r = adm.post("/ui/admin/users", data={"csrf": csrf, "name": "newrev", "role": "reviewer",
                                           "password": PW}, follow_redirects=False)
    assert r.status_code == 303 and "newrev" in adm.get("/ui/admin").text
    assert adm.post("/ui/admin/users", data={"name": "x2", "role": "admin",
                                             "password": PW}).status_code == 403  # no CSRF
    new = _signed_in(ui, "newrev")
    r = adm.post("/ui/admin/users/newrev/disabled", data={"csrf": csrf, "disabled": "1"},
                 follow_redirects=False)
    assert r.status_code == 303
    assert new.get("/ui/queue", follow_redirects=False).status_code == 303  # signed out
    rev = _signed_in(ui, "reviewer")
    rcsrf = form_token(rev.get("/ui/queue").text)
    assert rev.post("/ui/admin/users", data={"csrf": rcsrf, "name": "evil", "role": "admin",
                                             "password": PW}).status_code == 403


def test_break_prompt_after_reveals(db: Database, tmp_path: Path) -> None:
    ui = Ui(db, tmp_path, break_after_reveals=1)
    try:
        c = _signed_in(ui, "reviewer")
        case_id = ui.upload(c)["case_id"]
        page = c.get(f"/ui/cases/{case_id}")
        assert "Please take a break" not in page.text
        c.post(f"/ui/cases/{case_id}/reveal", data={"csrf": form_token(page.text)})
        assert "Please take a break" in c.get("/ui/queue").text
        adm = _signed_in(ui, "admin")
        assert "<td>reviewer</td><td>1</td>" in adm.get("/ui/admin").text  # exposure totals
    finally:
        ui.close()


def test_bad_ids_and_filters_are_clear_errors(ui: Ui) -> None:
    c = _signed_in(ui, "reviewer")
    for url, status in (("/ui/cases/abc", 422), ("/ui/queue?min_priority=abc", 422),
                        ("/ui/no-such-page", 404), ("/ui/static/nothing.css", 404)):
        r = c.get(url)
        assert r.status_code == status, url
        assert r.headers["content-type"].startswith("text/html"), url  # a page, not JSON
        assert "Content-Security-Policy" in r.headers
    assert c.get("/ui/cases/99999999999999999999999").status_code == 422
    assert c.get("/ui/cases/0").status_code == 422
    assert c.get("/ui/cases/12345").status_code == 404
    assert c.get("/ui/queue?min_priority=abc").status_code == 422
    assert c.get("/ui/queue?state=nonsense").status_code == 400


def test_sign_in_over_plain_http_with_secure_cookies_says_why_it_failed(
        db: Database, tmp_path: Path) -> None:
    ui = Ui(db, tmp_path, secure_cookies=True)
    try:
        c = ui.client()
        r = sign_in(c, "reviewer", PW)  # the client keeps Secure cookies off plain HTTP
        assert r.status_code == 403
        assert "HTTPS" in r.text and "secure_cookies" in r.text
        assert "form expired" not in r.text
    finally:
        ui.close()
