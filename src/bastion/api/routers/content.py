"""``POST /v1/content``, ``POST /v1/content:batch``, ``GET /v1/content/{content_id}``,
``POST /v1/hash``.

Bodies are parsed here, not by the framework: multipart uploads stream through
:func:`bastion.api.multipart.read_form` (in memory, never spooled to disk), JSON bodies are
bounded by :class:`~bastion.api.limits.BodyLimitMiddleware`. Then one call to the content
service, in a worker thread (hashing waits for an isolated decode worker).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bastion.api.auth import requires
from bastion.api.deps import Actor, Services, Svc
from bastion.api.fetch import fetch
from bastion.api.multipart import FILE_FIELD, FormData, read_form
from bastion.api.problems import BadRequest, FieldError, error_problem
from bastion.api.schemas import (
    BatchIn,
    BatchOut,
    HashOut,
    Problem,
    VerdictOut,
)
from bastion.content.schemas import ContentMeta
from bastion.content.service import Verdict
from bastion.content.signal_input import signals_from_json
from bastion.errors import BastionError

router = APIRouter(tags=["content"])

#: Metadata form fields of ``POST /v1/content`` (multipart); ``links`` may repeat.
META_FIELDS = tuple(k for k in ContentMeta.model_fields if k != "links")

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503)
}

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        FILE_FIELD: {"type": "string", "format": "binary"},
        "fetch_url": {"type": "string", "maxLength": 2048},
        "signals": {"type": "string", "description": "JSON array of signals"},
        "content_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "user_id": {"type": "string", "maxLength": 255},
        "content_type": {"type": "string", "maxLength": 100},
        "uploaded_at": {"type": "string", "format": "date-time"},
        "ip": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "published_url": {"type": "string", "maxLength": 2048},
        "original_hashes": {"type": "string", "description": "JSON object: md5, sha1, sha256"},
        "publicly_available": {"type": "boolean",
                               "description": "Visible to the public on the platform"},
        "text": {"type": "string"},
        "links": {"type": "array", "items": {"type": "string"}},
        "title": {"type": "string", "description": "Classified ad's title (an ad field)"},
        "location": {"type": "string", "maxLength": 256, "description": "Ad's location"},
        "posted_at": {"type": "string", "format": "date-time", "description": "Ad posted"},
    },
    "required": ["content_id"],
}

_CONTENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _FORM_SCHEMA},
            "application/json": {"schema": {"$ref": "#/components/schemas/ContentJsonIn"}},
        },
    }
}

_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                    "required": [FILE_FIELD],
                }
            }
        },
    }
}


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "")


async def read_json_body(request: Request) -> Any:
    """The request's JSON body. Raises BadRequest for anything but JSON."""
    ctype = _content_type(request).split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest("expected Content-Type application/json")
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}"[:200]) from None


def _validation_error(exc: ValidationError) -> FieldError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
    return FieldError(f"{loc}: {err.get('msg', 'invalid')}", loc)


def _meta_from_form(form: FormData) -> ContentMeta:
    data: dict[str, Any] = {}
    for name in META_FIELDS:
        value = form.one(name)
        if value is None:
            continue
        if name == "original_hashes":
            try:
                data[name] = json.loads(value)
            except ValueError:
                raise FieldError("original_hashes must be a JSON object", name) from None
        else:
            data[name] = value
    if form.fields.get("links"):
        data["links"] = form.fields["links"]
    try:
        return ContentMeta.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _signals_from_form(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise FieldError("signals must be a JSON array", "signals") from None
    if not isinstance(value, list):
        raise FieldError("signals must be a JSON array", "signals")
    return value


def _one_source(file: bool, fetch_url: bool, signals: bool, *, text: bool = False) -> None:
    """Exactly one media source, or none for an item that is only ``text``/``links``."""
    given = int(file) + int(fetch_url) + int(signals)
    if given > 1 or (given == 0 and not text):
        raise FieldError(
            "give exactly one of file (multipart), fetch_url or signals, or only text/links",
            "file|fetch_url|signals",
        )


def _submit(
    svc: Services, meta: ContentMeta, actor: str, *, data: bytes | None,
    fetch_url: str | None, signals: list[Any] | None,
) -> Verdict:
    """One item through the content service (blocking: run in a worker thread)."""
    if signals is not None:
        parsed = signals_from_json(signals)
        if not parsed:
            raise FieldError("signals is empty", "signals")
        verdict = svc.content.submit_signals(parsed, meta, actor=actor)
    elif fetch_url is not None:
        fetched = fetch(fetch_url, svc.fetch_policy)
        verdict = svc.content.submit_bytes(fetched.data, meta, actor=actor, source="url")
    elif data is not None:
        verdict = svc.content.submit_bytes(data, meta, actor=actor)
    else:
        verdict = svc.content.submit_text(meta, actor=actor)
    if not verdict.replayed:
        svc.metrics.verdicts.labels(verdict.status, verdict.decision).inc()
    return verdict


def _item_from_json(obj: Any) -> tuple[ContentMeta, str | None, list[Any] | None]:
    if not isinstance(obj, dict):
        raise FieldError("body must be a JSON object", "body")
    fetch_url = obj.get("fetch_url")
    signals = obj.get("signals")
    meta_fields = {k: v for k, v in obj.items() if k not in ("fetch_url", "signals")}
    if "file" in meta_fields:
        raise FieldError("a file must be sent as multipart/form-data", "file")
    if fetch_url is not None and not isinstance(fetch_url, str):
        raise FieldError("fetch_url must be a string", "fetch_url")
    if signals is not None and not isinstance(signals, list):
        raise FieldError("signals must be an array", "signals")
    try:
        meta = ContentMeta.model_validate(meta_fields)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    _one_source(
        False, fetch_url is not None, signals is not None, text=bool(meta.text or meta.links)
    )
    return meta, fetch_url, signals


@router.post(
    "/v1/content",
    summary="Submit one content item; returns its verdict synchronously",
    openapi_extra={**requires("content:submit"), **_CONTENT_BODY},
    responses={200: {"model": VerdictOut}, **_PROBLEMS},
)
async def submit_content(request: Request, svc: Svc, actor: Actor) -> JSONResponse:
    """Scan one item given as a file (multipart field ``file``), a ``fetch_url`` or
    ``signals`` (JSON); metadata as form fields or JSON keys. A file that cannot be decoded
    is a ``not_scanned`` verdict (HTTP 200) whose exact hashes were still matched. A retry
    with the same ``content_id`` and content returns the stored verdict (``replayed``)."""
    ctype = _content_type(request)  # boundaries are case-sensitive
    data: bytes | None = None
    fetch_url: str | None = None
    signals: list[Any] | None = None
    if ctype.lower().startswith("multipart/form-data"):
        form = await read_form(
            request.stream(), ctype, max_file_bytes=svc.settings.api_max_upload_bytes
        )
        meta = _meta_from_form(form)
        fetch_url = form.one("fetch_url")
        sig_text = form.one("signals")
        signals = None if sig_text is None else _signals_from_form(sig_text)
        data = form.file
        _one_source(
            data is not None, fetch_url is not None, signals is not None,
            text=bool(meta.text or meta.links),
        )
    else:
        meta, fetch_url, signals = _item_from_json(await read_json_body(request))
    verdict = await run_in_threadpool(
        _submit, svc, meta, actor, data=data, fetch_url=fetch_url, signals=signals
    )
    return JSONResponse(verdict.to_json())


@router.post(
    "/v1/content:batch",
    summary="Submit up to 100 items (signals or fetch_url); per-item results",
    openapi_extra=requires("content:submit"),
    responses={200: {"model": BatchOut}, **_PROBLEMS},
)
def submit_batch(body: BatchIn, request: Request, svc: Svc, actor: Actor) -> JSONResponse:
    """Each item as the JSON form of ``POST /v1/content``; one bad item never fails the
    rest: its result carries a problem instead of a verdict."""
    results: list[dict[str, Any]] = []
    for i, obj in enumerate(body.items):
        try:
            meta, fetch_url, signals = _item_from_json(obj)
            verdict = _submit(svc, meta, actor, data=None, fetch_url=fetch_url, signals=signals)
            results.append({"index": i, "ok": True, "verdict": verdict.to_json()})
        except BastionError as exc:
            _, prob, _ = error_problem(exc, f"{request.url.path}#items[{i}]")
            results.append({"index": i, "ok": False, "problem": prob})
    return JSONResponse({"results": results})


@router.get(
    "/v1/content/{content_id:path}",
    summary="The stored verdict of one item and its history",
    openapi_extra=requires("content:read"),
    responses={200: {"model": VerdictOut}, **_PROBLEMS},
)
def get_content(content_id: str, svc: Svc) -> JSONResponse:
    """The verdict stored for ``content_id`` and its history (oldest first)."""
    if not content_id or len(content_id) > 255:
        raise FieldError("content_id must be 1-255 characters", "content_id")
    return JSONResponse(svc.content.get(content_id).to_json())


@router.post(
    "/v1/hash",
    summary="The signals of a file; nothing is stored or matched",
    openapi_extra={**requires("content:submit"), **_FILE_BODY},
    responses={200: {"model": HashOut}, **_PROBLEMS},
)
async def hash_file(request: Request, svc: Svc) -> JSONResponse:
    """Hash the multipart ``file``: exact hashes always, PDQ/vPDQ when it decodes
    (``not_scanned`` with a reason otherwise)."""
    ctype = _content_type(request)  # boundaries are case-sensitive
    if not ctype.lower().startswith("multipart/form-data"):
        raise BadRequest("send the file as multipart/form-data (field 'file')")
    form = await read_form(
        request.stream(), ctype, max_file_bytes=svc.settings.api_max_upload_bytes
    )
    if form.file is None:
        raise FieldError("the multipart field 'file' is required", FILE_FIELD)
    result = await run_in_threadpool(svc.content.hash, form.file)
    out = result.to_json()
    out.pop("path", None)
    return JSONResponse(out)
