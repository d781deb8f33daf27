"""``/healthz`` (process alive) and ``/readyz`` (database reachable, indexes loaded).

``/readyz`` answers 503 until the bank indexes are loaded and then stays ready: loading is
done once, in the background, and the matcher never goes back to not-ready (changes are
applied in place), so the probe does not flap while a large index loads or updates. The
database check runs at most once a second (cached) in a worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from bastion.api.deps import Svc
from bastion.api.problems import NOT_READY_RETRY_S

router = APIRouter(tags=["health"])

_DB_CHECK_TTL_S = 1.0
_db_lock = threading.Lock()
_db_state: dict[int, tuple[float, str | None]] = {}


def _check_db(svc: Any) -> str | None:
    """None when the database answers, else a short reason (cached per app)."""
    key = id(svc.db)
    now = time.monotonic()
    with _db_lock:
        hit = _db_state.get(key)
        if hit is not None and now - hit[0] < _DB_CHECK_TTL_S:
            return hit[1]
    try:
        with svc.db.read() as session:
            session.execute(text("SELECT 1"))
        why = None
    except Exception as exc:
        why = f"database unreachable ({type(exc).__name__})"
    with _db_lock:
        _db_state[key] = (now, why)
    return why


@router.get("/healthz", summary="Process alive (public)")
def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to match (public)")
async def readyz(svc: Svc) -> JSONResponse:
    """200 ``{"status": "ready", ...}`` when the database answers and the indexes are
    loaded; else 503 with ``Retry-After`` and what is missing."""
    db_problem = await run_in_threadpool(_check_db, svc)
    body: dict[str, Any] = {
        "database": "ok" if db_problem is None else db_problem,
        "indexes": "loaded" if svc.matcher.ready else (
            "failed" if svc.matcher.load_error is not None else "loading"
        ),
    }
    if db_problem is None and svc.matcher.ready:
        body["status"] = "ready"
        return JSONResponse(body)
    body["status"] = "not_ready"
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(NOT_READY_RETRY_S)})
