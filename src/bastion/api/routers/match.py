"""``POST /v1/match``: match bare signals (platforms that hash locally)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bastion.api.auth import requires
from bastion.api.deps import Svc
from bastion.api.routers.content import _PROBLEMS
from bastion.api.schemas import MatchIn, MatchResultOut
from bastion.content.signal_input import signals_from_json
from bastion.signals.base import Signal

router = APIRouter(tags=["match"])


@router.post(
    "/v1/match",
    summary="Match up to 1,000 bare signals; one result per signal",
    openapi_extra=requires("match"),
    responses={200: {"model": MatchResultOut}, **_PROBLEMS},
)
def match_signals(body: MatchIn, svc: Svc) -> JSONResponse:
    """Each signal is matched on its own (a bare PDQ hash with its 8 dihedral variants,
    derived from the hash bits). 503 while the indexes load, never ``no_match``."""
    parsed = signals_from_json([s.model_dump(exclude_none=True) for s in body.signals])
    svc.matcher.require_ready()
    results = []
    for i, sig in enumerate(parsed):
        matches = svc.matcher.match_signals([sig])
        results.append({
            "index": i,
            "signal_type": sig.signal_type,
            "value": sig.value if isinstance(sig, Signal) else None,
            "status": "match" if matches else "no_match",
            "matches": [m.to_json() for m in matches],
        })
    return JSONResponse({"results": results})
