"""Every route of the app: 401 without a key, 403 with a key lacking its scope; exactly the
public paths are public. Enumerated from the app, so a new route cannot forget."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.routing import APIRoute
from tests.api.conftest import Api

from bastion.api.auth import (
    PUBLIC_PATHS,
    PUBLIC_PREFIXES,
    SCOPE_EXTENSION,
    flat_routes,
    route_scope,
)
from bastion.apikeys import service as keys
from bastion.store.types import utcnow

EXPECTED_PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs"}


def _routes(api: Api) -> list[tuple[str, str, object]]:
    out = []
    for route in flat_routes(list(api.client.app.router.routes)):  # type: ignore[attr-defined]
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or {"GET"}
        for m in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append((m, path, route))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_public_set_is_exactly_the_documented_one(api: Api) -> None:
    assert set(PUBLIC_PATHS) == EXPECTED_PUBLIC
    public_served = set()
    for method, path, _ in _routes(api):
        r = api.client.request(method, _concrete(path))
        if r.status_code != 401:
            public_served.add(path)
    # /docs/oauth2-redirect is FastAPI's helper page; it must not be public either.
    assert public_served == EXPECTED_PUBLIC


def test_every_route_needs_a_key_and_its_scope(api: Api) -> None:
    checked = 0
    for method, path, route in _routes(api):
        if path in PUBLIC_PATHS or (path + "/").startswith(PUBLIC_PREFIXES):
            continue  # the public static folder is checked by the test below
        url = _concrete(path)
        r = api.client.request(method, url)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["type"] == "urn:bastion:problem:unauthenticated"
        bad = {"Authorization": "Bearer bst_" + "A" * 43}
        assert api.client.request(method, url, headers=bad).status_code == 401
        required, _ = route_scope(route)
        if isinstance(route, APIRoute):
            assert SCOPE_EXTENSION in (route.openapi_extra or {}), f"{path} declares no scope"
        lacking = "all-but-admin" if required == "admin" else f"all-but-{required}"
        r = api.client.request(method, url, headers=api.h(lacking))
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["type"] == "urn:bastion:problem:forbidden"
        # The right scope gets past authorisation (any answer but 401/403).
        r = api.client.request(method, url, headers=api.h(required))
        assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 15


def test_unknown_path_needs_a_key_then_404(api: Api) -> None:
    assert api.client.get("/v1/nothing-here").status_code == 401
    r = api.client.get("/v1/nothing-here", headers=api.h("match"))
    assert r.status_code == 404
    assert r.json()["type"] == "urn:bastion:problem:not-found"


def test_expired_and_revoked_keys_are_refused(api: Api) -> None:
    with api.db.write() as s:
        rec, key = keys.create(s, name="short", scopes=["banks:read"],
                               expires_at=utcnow() + timedelta(hours=1))
        rec2, key2 = keys.create(s, name="revokee", scopes=["banks:read"])
    h1 = {"Authorization": f"Bearer {key}"}
    h2 = {"Authorization": f"Bearer {key2}"}
    assert api.client.get("/v1/banks", headers=h1).status_code == 200
    assert api.client.get("/v1/banks", headers=h2).status_code == 200
    with api.db.write() as s:
        keys.expire(s, key_id=rec.id)
        keys.revoke(s, key_id=rec2.id)
    api.client.app.state.key_cache.clear()  # type: ignore[attr-defined]
    assert api.client.get("/v1/banks", headers=h1).status_code == 401
    assert api.client.get("/v1/banks", headers=h2).status_code == 401


def test_rate_limit_per_key(make_api: object) -> None:
    api: Api = make_api(api_rate_per_s=1.0, api_rate_burst=3)  # type: ignore[operator]
    codes = [api.client.get("/v1/banks", headers=api.h("banks:read")).status_code
             for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3] == 429
    r = api.client.get("/v1/banks", headers=api.h("banks:read"))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["type"] == "urn:bastion:problem:rate-limited"
    # Another key has its own bucket.
    assert api.client.get("/v1/banks", headers=api.h("admin")).status_code == 200


def test_metrics_admin_or_metrics_token(make_api: object) -> None:
    api: Api = make_api(metrics_token="m-token-123")  # type: ignore[operator]
    api.client.get("/healthz")
    r = api.client.get("/metrics", headers=api.h("admin"))
    assert r.status_code == 200
    assert "bastion_http_requests_total" in r.text
    assert "bastion_index_ready 1.0" in r.text
    r = api.client.get("/metrics", headers={"Authorization": "Bearer m-token-123"})
    assert r.status_code == 200
    assert api.client.get("/metrics", headers=api.h("banks:read")).status_code == 403
    # The metrics token opens nothing else.
    r = api.client.get("/v1/banks", headers={"Authorization": "Bearer m-token-123"})
    assert r.status_code == 401


def test_api_reference_page_uses_its_own_swagger_ui_copy(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr" not in page.text and "https://" not in page.text.split("<body>")[0]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    js = api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert api.client.get("/docs/assets/swagger-ui.css").status_code == 200
    # Only the assets are public: nothing outside the folder is reachable through it.
    assert api.client.get("/docs/assets/../../v1/banks").status_code in (401, 404)
    assert api.client.get("/docs/assetsx").status_code == 401
