"""``GET /v1/retrohunt``: matches found in earlier content after a bank change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from bastion.api.auth import requires
from bastion.api.deps import Svc
from bastion.api.routers.content import _PROBLEMS
from bastion.api.schemas import RetrohuntOut
from bastion.store.content_log import list_retrohunt_matches

router = APIRouter(tags=["retrohunt"])


@router.get(
    "/v1/retrohunt",
    summary="Retro-hunt matches after a cursor",
    openapi_extra=requires("content:read"),
    responses={200: {"model": RetrohuntOut}, **_PROBLEMS},
)
def retrohunt(
    svc: Svc,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Matches of logged content against bank entries added after it was scanned, in a
    stable order; pass the returned ``cursor`` to get only newer ones (the same cursor
    comes back when nothing is new). A result committed late is never skipped."""
    with svc.db.read() as session:
        results, next_cursor = list_retrohunt_matches(session, cursor=cursor, limit=limit)
    return JSONResponse({"results": [r.to_json() for r in results], "cursor": next_cursor})
