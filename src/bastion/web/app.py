"""The review UI (``/ui``): server-rendered pages (Jinja2, a little plain JavaScript, no
build step, no third-party network), built by :func:`build_ui` and dispatched by
:class:`UiDispatch` in front of the API (so API-key authentication never sees ``/ui``; the
UI authenticates people with session cookies, :mod:`.guard`).

Pages: sign-in, queue (filters: state, priority, bank, age; keyboard ``j``/``k``/Enter),
case (all of the user's items, match explanation, blurred greyscale preview, reveal,
decision form with one key per decision), banks, audit log (auditors, admins), admin
(users and exposure totals per reviewer; admins).

Media rules: previews are made on the server in memory (:mod:`bastion.evidence.preview`;
a video is shown as a blurred contact sheet: a still picture, never playing, no sound)
and sent with ``Cache-Control: no-store``; auditors get no media URL at all. The unblurred
picture is sent only through a single-use reveal URL created by a POST (audited as
``case.reveal``, counted on the session), bound to the user and valid for
``review.reveal_seconds``. A break is suggested after ``review.break_after_reveals``
reveals or ``review.break_after_minutes`` minutes in a session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as FastApiPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.audit import service as audit
from bastion.cases import service as cases
from bastion.cases.schemas import QUEUE_STATES, STATES
from bastion.config import Settings
from bastion.errors import BastionError, Conflict, InvalidInput, NotFound, PolicyDenied
from bastion.evidence.preview import preview_of, revealed_image
from bastion.evidence.vault import Vault
from bastion.policy.rules import CLASSIFICATIONS, REVIEW_DECISIONS, Policy
from bastion.store.audit import current_request_id, record_audit_event
from bastion.store.database import Database
from bastion.store.models_review import RevealToken
from bastion.store.types import utcnow
from bastion.users import service as users
from bastion.web.guard import (
    COOKIE,
    LOGIN_COOKIE,
    CsrfRefused,
    LoginLimiter,
    NotSignedIn,
    Viewer,
    check_csrf,
    require_role,
)
from bastion.web.kit import UiKit

_HERE = Path(__file__).resolve().parent

#: A case id in a URL (a positive 63-bit integer).
CaseId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]
PREFIX = "/ui"

#: Security headers on every UI response.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; "
    "style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: The sign-in page's message when the browser did not send the sign-in cookie back over
#: plain HTTP (the cookies are ``Secure``: browsers send them over HTTPS and to localhost).
PLAIN_HTTP_MESSAGE = (
    "Your browser did not send the sign-in cookie back: Bastion's cookies are Secure and "
    "this page came over plain HTTP. Serve the UI over HTTPS (e.g. behind a TLS proxy), or "
    "open it at http://127.0.0.1 or http://localhost, or, for a trial only, set "
    "secure_cookies = false under [review] in bastion.toml."
)

#: One key per decision in the case page (ui.js).
DECISION_KEYS = {"csam": "c", "child_exploitation_other": "o", "trafficking": "t",
                 "adult_legal": "a", "not_violating": "n", "escalate": "e"}


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(scope: Scope) -> str:
    """The request's ``X-Request-ID`` when well formed (1-64 of ``A-Za-z0-9._:-``), else a
    new random id (32 hex)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return secrets.token_hex(16)


class UiDispatch:
    """ASGI middleware: paths under ``/ui`` go to the UI app, the rest to the API. Every
    HTTP request gets a request id (:func:`request_id_of`) that its audit events carry
    (:data:`bastion.store.audit.current_request_id`)."""

    def __init__(self, app: ASGIApp, *, ui: ASGIApp) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        token = current_request_id.set(request_id_of(scope) if path else None)
        try:
            if path == PREFIX or path.startswith(PREFIX + "/"):
                await self.ui(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            current_request_id.reset(token)


#: Modules that add pages to the UI: each has ``register(kit: UiKit) -> None``.
PAGE_MODULES = ("bastion.web.reports", "bastion.web.ads", "bastion.web.text")


def build_ui(*, settings: Settings, db: Database, vault: Vault | None,
             policy: Policy) -> FastAPI:
    """The UI app (paths include ``/ui``); see the module docstring."""
    env = Environment(loader=FileSystemLoader(str(_HERE / "templates")),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.globals.update(decision_keys=DECISION_KEYS, classifications=CLASSIFICATIONS,
                       decisions=REVIEW_DECISIONS, states=STATES)
    limiter = LoginLimiter(settings.review.login_attempts_per_minute)
    review = settings.review
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.mount(f"{PREFIX}/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def page(name: str, viewer: Viewer, **ctx: Any) -> HTMLResponse:
        minutes = viewer.review_seconds // 60
        take_break = (viewer.reveals >= review.break_after_reveals
                      or minutes >= review.break_after_minutes)
        return render(name, viewer=viewer, take_break=take_break, minutes=minutes, **ctx)

    def viewer_of(request: Request, *, count_time: bool = True) -> Viewer:
        token = request.cookies.get(COOKIE)
        with db.write() as s:
            found = users.find_session(s, token)
            if found is None:
                raise NotSignedIn("sign in first")
            row, user = found
            if count_time:
                users.touch(s, session_id=row.id)
            return Viewer(user.id, user.name, user.role, user.blur, row.id, row.csrf_token,
                          row.reveals, row.review_seconds)

    async def posted(request: Request, *roles: str, max_fields: int = 10,
                     count_time: bool = True) -> tuple[Viewer, Any]:
        """The signed-in viewer and the posted form (no files, at most ``max_fields``
        fields), once the form's CSRF token is checked and, when ``roles`` are given, the
        viewer holds one of them. Raises NotSignedIn, CsrfRefused, PolicyDenied."""
        form = await request.form(max_files=0, max_fields=max_fields)
        viewer = viewer_of(request, count_time=count_time)
        check_csrf(viewer, form.get("csrf"))
        if roles:
            require_role(viewer, *roles)
        return viewer, form

    @ui.exception_handler(BastionError)
    async def _error(request: Request, exc: BastionError) -> Response:
        if isinstance(exc, NotSignedIn):
            if request.method == "GET":
                return RedirectResponse(f"{PREFIX}/sign-in", status_code=303, headers=HEADERS)
            return render("error.html", 401, title="Signed out", message=str(exc))
        from bastion.evidence.platform_media import MediaUnavailable

        status = 403 if isinstance(exc, PolicyDenied) else 404 if isinstance(
            exc, NotFound) else 409 if isinstance(exc, Conflict) else 400 if isinstance(
            exc, InvalidInput) else 502 if isinstance(exc, MediaUnavailable) else 500
        return render("error.html", status, title="Not possible", message=exc.message)

    kit = UiKit(app=ui, env=env, settings=settings, db=db, vault=vault, policy=policy,
                render=render, page=page, viewer_of=viewer_of, posted=posted)

    @ui.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
                         for e in exc.errors()})
        return render("error.html", 422, title="Not possible",
                      message=f"This address has an invalid value: {', '.join(fields)}.")

    @ui.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = "Not found" if exc.status_code == 404 else "Not possible"
        return render("error.html", exc.status_code, title=title,
                      message="There is no such page." if exc.status_code == 404
                      else str(exc.detail)[:200])

    # -- signing in and out ------------------------------------------------------------

    def sign_in_page(status: int = 200, error: str | None = None) -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        resp = render("sign_in.html", status, login_token=nonce, error=error)
        resp.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict",
                        secure=review.secure_cookies, path=PREFIX, max_age=1800)
        return resp

    @ui.get(f"{PREFIX}/sign-in")
    def sign_in_form() -> HTMLResponse:
        return sign_in_page()

    @ui.post(f"{PREFIX}/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            return sign_in_page(429, "Too many attempts from this address; wait a minute.")
        sent, cookie = form.get("login_token"), request.cookies.get(LOGIN_COOKIE)
        if not cookie and review.secure_cookies and request.url.scheme == "http":
            return sign_in_page(403, PLAIN_HTTP_MESSAGE)
        if not isinstance(sent, str) or not cookie or not secrets.compare_digest(sent, cookie):
            return sign_in_page(403, "The form expired; please try again.")
        name, password = form.get("name"), form.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            return sign_in_page(400, "Enter your name and password.")
        from anyio import to_thread

        def attempt() -> tuple[int | None, str | None]:
            with db.write() as s:
                result = users.sign_in(s, name=name, password=password, settings=settings)
                if result.user is None:
                    return None, None
                token, _row = users.start_session(s, user_id=result.user.id,
                                                  settings=settings)
                return result.user.id, token

        uid, token = await to_thread.run_sync(attempt)
        if uid is None or token is None:
            return sign_in_page(401, "Wrong name or password, or the account is locked.")
        resp = RedirectResponse(f"{PREFIX}/queue", status_code=303, headers=HEADERS)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=review.secure_cookies, path=PREFIX,
                        max_age=int(review.session_hours * 3600))
        resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return resp

    @ui.post(f"{PREFIX}/sign-out")
    async def sign_out(request: Request) -> Response:
        viewer, _form = await posted(request, count_time=False)
        with db.write() as s:
            users.end_session(s, token=request.cookies.get(COOKIE, ""), actor=viewer.actor)
        resp = RedirectResponse(f"{PREFIX}/sign-in", status_code=303, headers=HEADERS)
        resp.delete_cookie(COOKIE, path=PREFIX)
        return resp

    # -- queue and cases ---------------------------------------------------------------

    @ui.get(PREFIX)
    @ui.get(f"{PREFIX}/")
    def home(request: Request) -> Response:
        viewer_of(request)
        return RedirectResponse(f"{PREFIX}/queue", status_code=303, headers=HEADERS)

    @ui.get(f"{PREFIX}/queue")
    def queue(request: Request, state: str | None = None,
              min_priority: Annotated[int, Query(ge=0, le=100)] = 0,
              bank: Annotated[str | None, Query(max_length=100)] = None,
              older_than_hours: Annotated[float | None, Query(ge=0, le=87600)] = None,
              ) -> Response:
        viewer = viewer_of(request)
        states = [state] if state else list(QUEUE_STATES)
        before = None if older_than_hours is None else utcnow() - timedelta(
            hours=max(0.0, min(older_than_hours, 24 * 3650)))
        now = utcnow()
        with db.read() as s:
            rows = cases.queue(s, states=states, min_priority=max(0, min(min_priority, 100)),
                               bank=bank or None, opened_before=before, limit=200)
        items = [{"case": c, "age": _age(now - c.opened_at),
                  "overdue": cases.is_overdue(c, settings, now)}
                 for c in cases.grouped_by_user(rows)]
        return page("queue.html", viewer, items=items, state=state or "",
                    min_priority=min_priority, bank=bank or "",
                    older_than_hours=older_than_hours)

    @ui.get(f"{PREFIX}/cases/{{case_id}}")
    def case_page(request: Request, case_id: CaseId, revealed: str | None = None) -> Response:
        viewer = viewer_of(request)
        notice = None
        with db.write() as s:
            case = cases.get(s, case_id=case_id)
            if viewer.decides and case.state in QUEUE_STATES:
                try:
                    case = cases.claim(s, case_id=case_id, reviewer=viewer.user_id,
                                       settings=settings)
                except Conflict as exc:
                    notice = exc.message
            siblings = ([c for c in cases.user_cases(s, user_id=case.user_id)
                         if c.id != case.id] if case.user_id else [])
            history = cases.events(s, case_id=case_id)
            record_audit_event(s, actor=viewer.actor, action="case.view", object_type="case",
                               object_id=str(case_id))
        can_decide = viewer.decides and case.state in QUEUE_STATES and notice is None
        reveal_url = None
        if revealed and viewer.sees_media and len(revealed) < 100:
            reveal_url = f"{PREFIX}/reveal/{revealed}"
        can_fetch = (viewer.sees_media and case.evidence_id is None
                     and case.media == "hashes_only" and bool(review.media_endpoint))
        extra: dict[str, Any] = {}
        if kit.case_context:
            with db.read() as s:
                for provide in kit.case_context:
                    extra.update(provide(s, case, viewer))
        return page("case.html", viewer, case=case, siblings=siblings, history=history,
                    notice=notice, can_decide=can_decide, reveal_url=reveal_url,
                    can_fetch=can_fetch,
                    age=_age(utcnow() - case.opened_at),
                    case_templates=kit.case_templates,
                    decide_templates=kit.decide_templates, **extra)

    @ui.post(f"{PREFIX}/cases/{{case_id}}/decide")
    async def decide(request: Request, case_id: CaseId) -> Response:
        viewer, form = await posted(request, "reviewer", max_fields=40)
        decision = str(form.get("decision") or "")
        classification = str(form.get("classification") or "") or None
        notes = str(form.get("notes") or "").strip() or None
        from bastion.web.reports import report_fields

        with db.write() as s:
            cases.decide(s, case_id=case_id, reviewer=viewer.user_id, decision=decision,
                         classification=classification, notes=notes, policy=policy,
                         settings=settings, **report_fields(form))
        return RedirectResponse(f"{PREFIX}/queue", status_code=303, headers=HEADERS)

    # -- media ---------------------------------------------------------------------------

    @ui.post(f"{PREFIX}/cases/{{case_id}}/fetch-media")
    async def fetch_media(request: Request, case_id: CaseId) -> Response:
        viewer, _form = await posted(request, "reviewer", "admin")
        if vault is None:
            raise NotFound("no media vault is configured")
        from anyio import to_thread

        from bastion.evidence.platform_media import fetch_platform_media

        with db.read() as s:
            case = cases.get(s, case_id=case_id)
            signals = cases.signals_of(s, content_id=case.content_id)
        data = await to_thread.run_sync(
            lambda: fetch_platform_media(settings, case.content_id, signals))
        with db.write() as s:
            cases.attach_media(s, case_id=case_id, data=data, vault=vault, actor=viewer.actor)
        return RedirectResponse(f"{PREFIX}/cases/{case_id}", status_code=303, headers=HEADERS)

    def _media(s: Any, case_id: int) -> bytes:
        if vault is None:
            raise NotFound("no media vault is configured")
        case = cases.get(s, case_id=case_id)
        if case.evidence_id is None:
            raise NotFound(f"case {case_id} has no stored media ({case.media})")
        return vault.read(s, case.evidence_id)

    @ui.get(f"{PREFIX}/media/{{case_id}}/preview")
    def preview(request: Request, case_id: CaseId) -> Response:
        viewer = viewer_of(request)
        require_role(viewer, "reviewer", "admin")
        with db.write() as s:
            data = _media(s, case_id)
            record_audit_event(s, actor=viewer.actor, action="case.preview",
                               object_type="case", object_id=str(case_id),
                               detail={"blur": viewer.blur})
        try:
            jpeg = preview_of(data, blur=viewer.blur, max_pixels=settings.limits.max_pixels,
                              max_seconds=settings.limits.max_video_seconds)
        except BastionError:
            raise NotFound("no preview for this media (not a picture)") from None
        return Response(jpeg, media_type="image/jpeg", headers=HEADERS)

    @ui.post(f"{PREFIX}/cases/{{case_id}}/reveal")
    async def reveal(request: Request, case_id: CaseId) -> Response:
        viewer, _form = await posted(request, "reviewer", "admin")
        token = secrets.token_urlsafe(24)
        with db.write() as s:
            case = cases.get(s, case_id=case_id)
            if case.evidence_id is None:
                raise NotFound(f"case {case_id} has no stored media")
            s.add(RevealToken(digest=hashlib.sha256(token.encode()).hexdigest(),
                              user_id=viewer.user_id, evidence_id=case.evidence_id,
                              case_id=case_id,
                              expires_at=utcnow() + timedelta(seconds=review.reveal_seconds)))
            users.touch(s, session_id=viewer.session_id, reveals=1)
            record_audit_event(s, actor=viewer.actor, action="case.reveal",
                               object_type="case", object_id=str(case_id),
                               detail={"evidence_id": case.evidence_id})
        return RedirectResponse(f"{PREFIX}/cases/{case_id}?revealed={token}", status_code=303,
                                headers=HEADERS)

    @ui.get(f"{PREFIX}/reveal/{{token}}")
    def revealed(request: Request, token: str) -> Response:
        viewer = viewer_of(request)
        require_role(viewer, "reviewer", "admin")
        if vault is None or len(token) > 100:
            raise NotFound("no such reveal")
        with db.write() as s:
            row = s.execute(select(RevealToken).where(
                RevealToken.digest == hashlib.sha256(token.encode()).hexdigest())
                .with_for_update()).scalar_one_or_none()
            if (row is None or row.user_id != viewer.user_id or row.used_at is not None
                    or row.expires_at <= utcnow()):
                raise NotFound("this reveal link was used already or has expired")
            row.used_at = utcnow()
            data = vault.read(s, row.evidence_id)
        try:
            jpeg = revealed_image(data, max_pixels=settings.limits.max_pixels)
        except BastionError:
            raise NotFound("this media cannot be shown as a picture") from None
        return Response(jpeg, media_type="image/jpeg", headers=HEADERS)

    # -- other pages ---------------------------------------------------------------------

    @ui.get(f"{PREFIX}/banks")
    def banks_page(request: Request) -> Response:
        viewer = viewer_of(request)
        from bastion.banks import service as banks
        from bastion.store.models import BankEntry

        with db.read() as s:
            rows = banks.get_all(s)
            fp = list(s.execute(select(BankEntry.id, BankEntry.bank_id, BankEntry.signal_type,
                                       BankEntry.fp_votes, BankEntry.enabled)
                                .where(BankEntry.fp_votes > 0)
                                .order_by(BankEntry.fp_votes.desc()).limit(100)))
        return page("banks.html", viewer, banks=rows, fp=fp)

    @ui.get(f"{PREFIX}/audit")
    def audit_page(request: Request, before_id: int | None = None) -> Response:
        viewer = viewer_of(request)
        require_role(viewer, "auditor", "admin")
        with db.read() as s:
            events = audit.recent(s, limit=100, before_id=before_id)
            check = audit.verify(s)
        return page("audit.html", viewer, events=events, check=check)

    @ui.get(f"{PREFIX}/admin")
    def admin_page(request: Request) -> Response:
        viewer = viewer_of(request)
        require_role(viewer, "admin")
        with db.read() as s:
            people = users.get_all(s)
            exposure = users.exposure_totals(s)
        return page("admin.html", viewer, people=people, exposure=exposure)

    @ui.post(f"{PREFIX}/admin/users")
    async def admin_create_user(request: Request) -> Response:
        viewer, form = await posted(request, "admin")
        name, role, password = (str(form.get(k) or "") for k in ("name", "role", "password"))
        with db.write() as s:
            users.create(s, name=name, role=role, password=password, actor=viewer.actor,
                         blur=review.default_blur)
        return RedirectResponse(f"{PREFIX}/admin", status_code=303, headers=HEADERS)

    @ui.post(f"{PREFIX}/admin/users/{{name}}/disabled")
    async def admin_disable_user(request: Request, name: str) -> Response:
        viewer, form = await posted(request, "admin")
        disabled = form.get("disabled") == "1"
        if disabled and name == viewer.name:
            raise InvalidInput("an admin cannot disable their own account")
        with db.write() as s:
            users.set_disabled(s, name=name, disabled=disabled, actor=viewer.actor)
        return RedirectResponse(f"{PREFIX}/admin", status_code=303, headers=HEADERS)

    @ui.post(f"{PREFIX}/settings/blur")
    async def set_blur(request: Request) -> Response:
        viewer, form = await posted(request)
        try:
            blur = int(str(form.get("blur") or ""))
        except ValueError:
            raise InvalidInput("blur must be a whole number") from None
        with db.write() as s:
            users.set_blur(s, user_id=viewer.user_id, blur=blur)
            record_audit_event(s, actor=viewer.actor, action="user.set_blur",
                               object_type="user", object_id=str(viewer.user_id),
                               detail={"blur": blur})
        return RedirectResponse(f"{PREFIX}/queue", status_code=303, headers=HEADERS)

    import importlib

    for name in PAGE_MODULES:
        importlib.import_module(name).register(kit)
    return ui


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


__all__ = ["CsrfRefused", "NotSignedIn", "UiDispatch", "build_ui"]
