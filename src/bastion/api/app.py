"""The API application: :func:`create_app` builds it from :class:`~bastion.config.Settings`.

Layers around the routers, outermost first: metrics (counts every response), body limits
(413 from ``Content-Length`` or while streaming), authentication and authorisation (401,
403, 429; :mod:`bastion.api.auth`), then FastAPI's routing. Errors become problem+json
responses from one table (:mod:`bastion.api.problems`); an unexpected exception is logged
with its stack trace and answered with a bare 500 problem, never the trace.

The app owns (and closes at shutdown) what it creates: the store connection, a
:class:`~bastion.scan.service.MatchService` loading the indexes in the background and
following the bank change log, and the isolated decode pool. Tests may pass their own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException

from bastion.api.auth import PUBLIC_PATHS, AuthMiddleware, KeyCache, flat_routes
from bastion.api.deps import Services
from bastion.api.fetch import FetchPolicy
from bastion.api.limits import BodyLimitMiddleware, RateLimiter
from bastion.api.metrics import Metrics, MetricsMiddleware
from bastion.api.problems import (
    HTTP_PROBLEMS,
    PROBLEM_JSON,
    error_problem,
    problem_body,
)
from bastion.api.routers import banks, content, flags, health, match, metrics, retrohunt
from bastion.api.schemas import ContentJsonIn, EntriesIn
from bastion.apikeys import service as keys
from bastion.apikeys.service import ApiKeyRecord
from bastion.config import Settings
from bastion.content.service import ContentService
from bastion.errors import BastionError
from bastion.evidence.vault import open_vault
from bastion.policy import load_policy
from bastion.scan.service import MatchService
from bastion.signals.isolation import DecodePool
from bastion.store.database import Database, open_database
from bastion.web.app import UiDispatch, build_ui

log = logging.getLogger(__name__)

API_VERSION = "1.0"


def _problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(BastionError)
    async def _bastion(request: Request, exc: BastionError) -> JSONResponse:
        status, body, headers = error_problem(exc, request.url.path)
        return _problem_response(status, body, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc(e.get("loc", ())), "detail": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            pt = HTTP_PROBLEMS[400]
            return _problem_response(400, problem_body(
                pt, "body is not valid JSON", request.url.path))
        pt = HTTP_PROBLEMS[422]
        detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors[:5])
        return _problem_response(422, problem_body(pt, detail, request.url.path, errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, BastionError):  # e.g. PayloadTooLarge while FastAPI read a body
            return await _bastion(request, cause)
        pt = HTTP_PROBLEMS.get(exc.status_code) or HTTP_PROBLEMS[
            400 if exc.status_code < 500 else 500
        ]
        detail = exc.detail if isinstance(exc.detail, str) else pt.title
        return _problem_response(
            exc.status_code, {**problem_body(pt, detail, request.url.path),
                              "status": exc.status_code},
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        pt = HTTP_PROBLEMS[500]
        return _problem_response(500, problem_body(
            pt, "internal error; the server log has the details", request.url.path))


def _custom_openapi(app: FastAPI) -> None:
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ContentJsonIn, EntriesIn):
            js = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps[model.__name__] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


#: Where the API reference page's own copy of Swagger UI is served (public, no key).
DOCS_ASSETS = "/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI for ``/openapi.json``, served from the ``swagger-ui-bundle``
    package under :data:`DOCS_ASSETS` rather than a CDN, so the page works offline and
    asks no third party for anything (self-hosted deployments are often air-gapped)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Bastion API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def _warm_ad_networks(db: Database) -> None:
    """Rebuild the ad networks from the stored ads at start (in a background thread),
    when there are any, so that the first ad submission or network page does not pay for
    the replay (about a minute per 100,000 ads). Requests that arrive meanwhile wait for
    it on the repository's lock. A failure is logged; the next use retries."""
    try:
        from sqlalchemy import select

        from bastion.store.models_ads import StoredAd
        from bastion.trafficking.adstore import shared_repository

        with db.read() as session:
            if session.execute(select(StoredAd.id).limit(1)).first() is None:
                return
            shared_repository(db).networks(session)
    except Exception:  # logged; the first use loads them again
        log.warning("could not rebuild the ad networks at start", exc_info=True)


async def _freeze_gc_when_loaded(matcher: MatchService, poll_s: float = 0.5) -> None:
    """Once the indexes have loaded, move every object alive then (the app, the indexes'
    bookkeeping, imported modules: a few hundred thousand) out of the cyclic garbage
    collector's reach with :func:`gc.freeze`, so that its full collections, which otherwise
    walk all of them (tens of milliseconds), scan only objects made since: this removes
    periodic request stalls from the latency tail. Objects frozen this way are still freed
    by reference counting."""
    while not matcher.ready:
        if matcher.load_error is not None:
            return
        await asyncio.sleep(poll_s)
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    matcher: MatchService | None = None,
    pool: DecodePool | None = None,
    fetch_policy: FetchPolicy | None = None,
) -> FastAPI:
    """Build the API for ``settings``. Creates (and closes at shutdown) whatever is not
    passed: the store (migrated), a background-loading match service following the change
    log, and the decode pool (``settings.decode_workers``; 0 decodes in-process). Raises
    :class:`~bastion.errors.ConfigurationError` when the store cannot be opened."""
    owned: list[Any] = []
    if db is None:
        db = open_database(settings)
        owned.append(db.dispose)
    if matcher is None:
        matcher = MatchService(db, limits=settings.limits, snapshot_dir=settings.home / "index")
        matcher.start(background=True)
        owned.append(matcher.close)
    if pool is None and settings.decode_workers != 0:
        pool = DecodePool(settings.decode_workers, limits=settings.limits)
        owned.append(pool.close)
    policy = fetch_policy or FetchPolicy.from_settings(
        settings.fetch_urls, settings.fetch_allow_networks, settings.fetch_max_bytes,
        settings.fetch_timeout_s,
    )
    review_policy = load_policy(settings.policy)
    vault = open_vault(settings)
    svc = Services(
        settings=settings, db=db, matcher=matcher, pool=pool,
        content=ContentService(db=db, matcher=matcher, settings=settings, pool=pool,
                               policy=review_policy, vault=vault),
        fetch_policy=policy, metrics=Metrics(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        freezer = asyncio.create_task(_freeze_gc_when_loaded(matcher))
        threading.Thread(target=_warm_ad_networks, args=(db,), name="bastion-ads-warm",
                         daemon=True).start()
        yield
        freezer.cancel()
        gc.unfreeze()  # back to the collector's care (tests start many apps in one process)
        for close in reversed(owned):
            close()

    app = FastAPI(
        title="Bastion API",
        version=API_VERSION,
        description=(
            "Hash uploads, match them against banks of known material, and get a verdict. "
            "Every /v1 route needs `Authorization: Bearer <API key>` with the scope named in "
            "its `x-required-scope`. Errors are RFC 9457 problem+json."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[],
    )
    app.state.services = svc
    bearer = HTTPBearer(auto_error=False, description="An API key (bastion apikey create)")
    for r in (content.router, match.router, banks.router, retrohunt.router, metrics.router,
              flags.router):
        app.include_router(r, dependencies=[Depends(bearer)])
    app.include_router(health.router)
    _install_docs(app)
    _install_handlers(app)
    _custom_openapi(app)

    def lookup(key: str) -> ApiKeyRecord | None:
        with db.read() as session:
            return keys.find_by_key(session, key)

    app.state.key_cache = KeyCache(lookup)
    app.add_middleware(
        AuthMiddleware,
        routes=lambda: flat_routes(list(app.router.routes)),
        key_cache=app.state.key_cache,
        limiter=RateLimiter(settings.api_rate_per_s, settings.api_rate_burst),
        metrics_token=(
            settings.metrics_token.get_secret_value() if settings.metrics_token else None
        ),
    )
    app.add_middleware(BodyLimitMiddleware, max_upload_bytes=settings.api_max_upload_bytes)
    # The review UI (/ui) authenticates people with session cookies, not API keys.
    app.add_middleware(UiDispatch, ui=build_ui(settings=settings, db=db, vault=vault,
                                                policy=review_policy))
    app.add_middleware(MetricsMiddleware, metrics=lambda: svc.metrics)
    return app


__all__ = ["PUBLIC_PATHS", "create_app"]


def app_from_env() -> FastAPI:
    """An app from :func:`~bastion.config.load_settings` (the environment and the TOML
    file): what each ``bastion serve --workers N`` worker process runs."""
    from bastion.config import load_settings

    return create_app(load_settings())
