"""Banks and their entries: ``/v1/banks``, ``/v1/banks/{name}``,
``/v1/banks/{name}/entries[/{entry_id}]``, ``/v1/banks/{name}/export``.

Each route opens one unit of work and calls :mod:`bastion.banks`; every write is audited
(``api.bank.*`` events, actor ``api-key:<id>``) in the same transaction. Entries are added
as fields (JSON, validated like every import) or as a file (multipart ``file``: hashed in an
isolated decode worker, every signal it yields added under one item key).
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bastion.api.auth import requires
from bastion.api.deps import Actor, Svc
from bastion.api.multipart import FILE_FIELD, read_form
from bastion.api.problems import FieldError
from bastion.api.routers.content import _PROBLEMS, read_json_body
from bastion.api.schemas import EntriesIn, EntryPatch
from bastion.banks import service
from bastion.banks.exporting import export_bank, record_export_denied
from bastion.banks.formats import FORMATS
from bastion.banks.schemas import BankCreate, BankRead, BankUpdate, EntryRead, RowIssue
from bastion.banks.values import check_entry, check_time
from bastion.errors import InvalidInput, PolicyDenied
from bastion.signals.base import Signal
from bastion.signals.result import HashResult
from bastion.store import bank_repository as repo
from bastion.store.audit import record_audit_event
from bastion.store.records import EntryRecord

#: The largest id a store row can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1
#: An entry id in a path: a positive 63-bit integer (anything else is a 422, not a 500).
EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]

router = APIRouter(tags=["banks"])

def _audit(session: Any, actor: str, action: str, bank: BankRead | str, **detail: Any) -> None:
    name = bank.name if isinstance(bank, BankRead) else bank
    oid = str(bank.id) if isinstance(bank, BankRead) else name
    record_audit_event(
        session, actor=actor, action=action, object_type="bank", object_id=oid,
        detail={"bank": name, **detail},
    )


@router.get("/v1/banks", openapi_extra=requires("banks:read"), responses=_PROBLEMS)
def list_banks(svc: Svc) -> dict[str, list[BankRead]]:
    """Every bank with its settings and entry counts."""
    with svc.db.read() as session:
        return {"banks": service.get_all(session)}


@router.post(
    "/v1/banks", status_code=201, openapi_extra=requires("banks:write"), responses=_PROBLEMS
)
def create_bank(body: BankCreate, svc: Svc, actor: Actor) -> BankRead:
    """Create a bank (409 if the name is taken)."""
    with svc.db.write() as session:
        bank = service.create(session, data=body)
        _audit(session, actor, "bank.create", bank)
        return bank


@router.get("/v1/banks/{name}", openapi_extra=requires("banks:read"), responses=_PROBLEMS)
def get_bank(name: str, svc: Svc) -> BankRead:
    """One bank."""
    with svc.db.read() as session:
        return service.get(session, name=name)


@router.patch("/v1/banks/{name}", openapi_extra=requires("banks:write"), responses=_PROBLEMS)
def update_bank(name: str, body: BankUpdate, svc: Svc, actor: Actor) -> BankRead:
    """Change a bank's settings (rename, label, thresholds, auto_action, exportable,
    enabled); fields left out stay."""
    with svc.db.write() as session:
        bank = service.update(session, name=name, data=body)
        _audit(session, actor, "bank.update", bank,
               fields=sorted(body.model_dump(exclude_none=True)))
        return bank


@router.delete("/v1/banks/{name}", openapi_extra=requires("banks:write"), responses=_PROBLEMS)
def delete_bank(name: str, svc: Svc, actor: Actor) -> BankRead:
    """Delete a bank and all its entries; returns it as it was."""
    with svc.db.write() as session:
        bank = service.delete(session, name=name)
        _audit(session, actor, "bank.delete", bank)
        return bank


def _add_fields(svc: Any, name: str, entries: list[dict[str, Any]], actor: str) -> dict[str, Any]:
    issues: list[RowIssue] = []
    new: list[repo.NewEntry] = []
    for i, fields in enumerate(entries):
        if not isinstance(fields, dict):
            issues.append(RowIssue(i + 1, "rejected", "an entry must be an object"))
            continue
        try:
            entry, warnings = check_entry(fields)
        except InvalidInput as exc:
            issues.append(RowIssue(i + 1, "rejected", exc.message))
            continue
        issues.extend(RowIssue(i + 1, "flagged", w) for w in warnings)
        new.append(entry)
    with svc.db.write() as session:
        bank = repo.get_bank(session, name)
        stored, dups = repo.add_entries(session, bank, new)
        issues.extend(RowIssue(0, "duplicate", f"{new[d].signal_type} value already in the bank")
                      for d in dups)
        record_audit_event(
            session, actor=actor, action="bank.entries.add", object_type="bank",
            object_id=str(bank.id), detail={"bank": bank.name, "added": len(stored)},
        )
        added = [EntryRead.from_record(e, bank.name).model_dump(mode="json") for e in stored]
    return {"added": added, "issues": [i.to_json() for i in issues]}


def _add_hashed(svc: Any, name: str, result: HashResult, actor: str) -> dict[str, Any]:
    key = service.item_key_for(result)
    fields = []
    issues: list[RowIssue] = []
    if result.status != "hashed":
        issues.append(RowIssue(0, "flagged", f"not decoded ({result.reason}); exact hashes only"))
    for sig in result.signals:
        if isinstance(sig, Signal) and sig.low_quality:
            issues.append(RowIssue(0, "skipped", f"{sig.signal_type} {sig.variant.kind} has "
                                   f"quality {sig.quality} < 50; not added"))
            continue
        fields.append({**service.entry_fields_from_signal(sig), "item": key})
    out = _add_fields(svc, name, fields, actor)
    out["issues"] = [i.to_json() for i in issues] + out["issues"]
    return out


@router.post(
    "/v1/banks/{name}/entries",
    status_code=201,
    openapi_extra={
        **requires("banks:write"),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/EntriesIn"}},
                "multipart/form-data": {"schema": {
                    "type": "object",
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                    "required": [FILE_FIELD],
                }},
            },
        },
    },
    responses=_PROBLEMS,
)
async def add_entries(name: str, request: Request, svc: Svc, actor: Actor) -> JSONResponse:
    """Add entries given as fields (``{"entries": [{"signal_type", "value", ...}]}``, up to
    10,000, each validated; rejected ones are reported with their 1-based position) or a
    file (multipart ``file``: every signal it yields). Returns the added entries and
    issues."""
    ctype = request.headers.get("content-type", "")  # boundaries are case-sensitive
    with svc.db.read() as session:
        service.get(session, name=name)  # 404 before reading a large body
    if ctype.lower().startswith("multipart/form-data"):
        form = await read_form(
            request.stream(), ctype, max_file_bytes=svc.settings.api_max_upload_bytes
        )
        if form.file is None:
            raise FieldError("the multipart field 'file' is required", FILE_FIELD)
        result = await run_in_threadpool(svc.content.hash, form.file)
        out = await run_in_threadpool(_add_hashed, svc, name, result, actor)
    else:
        raw = await read_json_body(request)
        try:
            body = EntriesIn.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
            raise FieldError(f"{loc}: {err.get('msg', 'invalid')}", loc) from None
        out = await run_in_threadpool(_add_fields, svc, name, body.entries, actor)
    return JSONResponse(out, status_code=201)


@router.get(
    "/v1/banks/{name}/entries", openapi_extra=requires("banks:read"), responses=_PROBLEMS
)
def list_entries(
    name: str,
    svc: Svc,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """Entries in ascending id after ``after_id``; pass the last id to page on."""
    with svc.db.read() as session:
        entries = service.list_entries(session, name=name, after_id=after_id, limit=limit)
    return {"entries": entries, "next_after_id": entries[-1].id if entries else None}


def _entry(session: Any, name: str, entry_id: int) -> EntryRead:
    bank = repo.get_bank(session, name)
    row = repo.get_entry(session, entry_id, bank=bank)
    return EntryRead.from_record(EntryRecord.from_row(row), bank.name)


@router.get(
    "/v1/banks/{name}/entries/{entry_id}",
    openapi_extra=requires("banks:read"), responses=_PROBLEMS,
)
def get_entry(name: str, entry_id: EntryId, svc: Svc) -> EntryRead:
    """One entry."""
    with svc.db.read() as session:
        return _entry(session, name, entry_id)


@router.patch(
    "/v1/banks/{name}/entries/{entry_id}",
    openapi_extra=requires("banks:write"), responses=_PROBLEMS,
)
def patch_entry(
    name: str, entry_id: EntryId, body: EntryPatch, svc: Svc, actor: Actor
) -> EntryRead:
    """Enable an entry, or disable it (until ``disabled_until``, RFC 3339, when given)."""
    until = check_time(body.disabled_until, "disabled_until")
    if body.enabled and until is not None:
        raise FieldError("disabled_until needs enabled: false", "disabled_until")
    with svc.db.write() as session:
        entry = service.set_entry_enabled(
            session, name=name, entry_id=entry_id, enabled=body.enabled, until=until
        )
        _audit(session, actor, "bank.entry.update", name, entry_id=entry_id,
               enabled=body.enabled)
        return entry


@router.delete(
    "/v1/banks/{name}/entries/{entry_id}",
    openapi_extra=requires("banks:write"), responses=_PROBLEMS,
)
def delete_entry(name: str, entry_id: EntryId, svc: Svc, actor: Actor) -> EntryRead:
    """Delete one entry; returns it as it was."""
    with svc.db.write() as session:
        entry = service.delete_entry(session, name=name, entry_id=entry_id)
        _audit(session, actor, "bank.entry.delete", name, entry_id=entry_id)
        return entry


@router.get(
    "/v1/banks/{name}/export", openapi_extra=requires("banks:export"),
    responses={200: {"content": {"text/plain": {}}}, **_PROBLEMS},
)
def export(
    name: str,
    svc: Svc,
    actor: Actor,
    format: Annotated[str, Query(pattern="^(" + "|".join(FORMATS) + ")$")] = "csv",
) -> Response:
    """The bank's entries in ``format`` (csv, tsv, jsonl, pytx); only for ``exportable``
    banks (403 otherwise, audited either way)."""
    out = io.StringIO()
    try:
        with svc.db.write() as session:
            export_bank(session, name=name, out=out, fmt=format, actor=actor)
    except PolicyDenied:
        with svc.db.write() as session:
            record_export_denied(session, name=name, fmt=format, actor=actor)
        raise
    media = {"csv": "text/csv", "tsv": "text/tab-separated-values",
             "jsonl": "application/x-ndjson"}.get(format, "text/plain")
    return Response(out.getvalue(), media_type=f"{media}; charset=utf-8")
