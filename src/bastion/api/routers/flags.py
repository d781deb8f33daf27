"""``POST /v1/flags``: a user report or a moderator's flag opens (or raises) a case.

This is where material no bank knows yet reaches reviewers. The item is named by the
platform's ``content_id``: one already submitted (its verdict, matches and media are
attached to the case) or a new one (submit its bytes with ``POST /v1/content`` first for
the reviewer to see it; otherwise the case holds no media and says so).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bastion.api.auth import requires
from bastion.api.deps import Actor, Svc
from bastion.api.routers.content import _PROBLEMS
from bastion.cases import service as cases

router = APIRouter(tags=["flags"])


class FlagIn(BaseModel):
    """A flag: the item, who flagged it (an opaque id, e.g. ``user-report:123`` or
    ``moderator:7``; never a name) and why."""

    model_config = ConfigDict(extra="forbid")

    content_id: str = Field(min_length=1, max_length=255)
    reporter: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=cases.MAX_REASON_CHARS)
    user_id: str | None = Field(default=None, max_length=255)


@router.post(
    "/v1/flags",
    summary="Flag an item for review",
    openapi_extra=requires("content:submit"),
    responses={**_PROBLEMS},
)
def flag(body: FlagIn, svc: Svc, actor: Actor) -> JSONResponse:
    """Open a case for the item (source ``flag``), or add the flag to its case and raise
    the case's priority. Returns the case (``id``, ``state``, ``priority``, ``media``)."""
    with svc.db.write() as session:
        case = cases.flag(session, content_id=body.content_id, reporter=body.reporter,
                          reason=body.reason, actor=actor, user_id=body.user_id)
    out = case.to_json()
    return JSONResponse({k: out[k] for k in ("id", "content_id", "state", "priority",
                                              "source", "media")})
