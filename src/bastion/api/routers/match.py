"""``POST /v1/match``: match bare signals (platforms that hash locally)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bastion.api.auth import requires
from bastion.api.deps import Services, Svc
from bastion.api.routers.content import _PROBLEMS
from bastion.api.schemas import MatchIn, MatchResultOut
from bastion.content.signal_input import signals_from_json
from bastion.signals.base import Signal

router = APIRouter(tags=["match"])

#: Largest request matched on the event loop rather than in a worker thread.
INLINE_SIGNALS = 4


@router.post(
    "/v1/match",
    summary="Match up to 1,000 bare signals; one result per signal",
    openapi_extra=requires("match"),
    responses={200: {"model": MatchResultOut}, **_PROBLEMS},
)
async def match_signals(body: MatchIn, svc: Svc) -> JSONResponse:
    """Each signal is matched on its own (a bare PDQ hash with its 8 dihedral variants,
    derived from the hash bits). 503 while the indexes load, never ``no_match``.

    Up to :data:`INLINE_SIGNALS` signals are matched on the event loop (an exact lookup
    takes microseconds, a PDQ search about a millisecond at 1M hashes: cheaper than a
    thread hand-off); larger batches in a worker thread."""
    svc.matcher.require_ready()
    items = [s.model_dump(exclude_none=True) for s in body.signals]
    if len(items) <= INLINE_SIGNALS:
        return JSONResponse(_match(svc, items))
    return JSONResponse(await run_in_threadpool(_match, svc, items))


def _match(svc: Services, items: list[dict[str, Any]]) -> dict[str, Any]:
    parsed = signals_from_json(items)
    photos = [s for s in parsed if isinstance(s, Signal)]
    batched = iter(svc.matcher.match_each(photos)) if len(photos) == len(parsed) else None
    results = []
    for i, sig in enumerate(parsed):
        matches = next(batched) if batched is not None else svc.matcher.match_signals([sig])
        results.append({
            "index": i,
            "signal_type": sig.signal_type,
            "value": sig.value if isinstance(sig, Signal) else None,
            "status": "match" if matches else "no_match",
            "matches": [m.to_json() for m in matches],
        })
    return {"results": results}
