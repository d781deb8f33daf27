"""The content service: scan one submitted item, decide, and store its verdict once.

:class:`ContentService` is what ``POST /v1/content`` and ``GET /v1/content/{id}`` call::

    svc = ContentService(db=db, matcher=match_service, settings=settings, pool=pool)
    verdict = svc.submit_bytes(data, meta, actor="api-key:3")
    svc.get("post-123")             # the stored verdict and its history

The path (DESIGN.md "The main path"): hash in an isolated decode worker
(:mod:`bastion.signals.isolation`) -> match (every index, dihedral variants included;
:class:`~bastion.errors.NotReady` while the indexes load, never ``no_match``) ->
:func:`bastion.policy.decide` -> ONE write transaction holding the verdict, its first
history event, the content-log row (signals only, for retro-hunt) and the audit event.

Idempotency on ``content_id``: the request digest is the SHA-256 of what was scanned (the
bytes, or the canonical JSON of submitted signals). A retry with the same digest returns
the stored verdict (``replayed: true``) and creates nothing; the same ``content_id`` with
a different digest raises :class:`~bastion.errors.Conflict`. Two concurrent first
submissions race on the table's unique ``content_id``: the loser returns the winner's
verdict (or the conflict).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.config import Settings
from bastion.content.schemas import ContentMeta
from bastion.content.signal_input import canonical_json
from bastion.errors import Conflict, NotFound
from bastion.policy import DEFAULT_POLICY, Policy, PolicyOutcome
from bastion.scan.service import MatchService, ScanResult, status_of
from bastion.signals.base import Signal, VideoSignal
from bastion.signals.compute import hash_bytes
from bastion.signals.isolation import DecodePool
from bastion.signals.result import HashResult
from bastion.store.audit import record_audit_event
from bastion.store.content_log import log_item
from bastion.store.models import RetrohuntMatch
from bastion.store.models_api import ContentVerdict, ContentVerdictEvent
from bastion.store.types import utcnow

if TYPE_CHECKING:
    from bastion.evidence.texts import PendingText
    from bastion.evidence.vault import Sealed, Vault
    from bastion.trafficking.adstore import AdRepository
    from bastion.trafficking.lexicon import Lexicon

Source = Literal["upload", "url", "signals", "text"]


def digest_bytes(data: bytes) -> str:
    """SHA-256 (64 hex) of submitted bytes: the request digest of a file submission."""
    return hashlib.sha256(data).hexdigest()


def digest_signals(signals: list[Signal | VideoSignal]) -> str:
    """SHA-256 (64 hex) of the canonical JSON of submitted signals."""
    text = json.dumps(canonical_json(signals), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def with_text_digest(digest: str, meta: ContentMeta) -> str:
    """The request digest extended by the item's ``text`` and ``links`` (unchanged when it
    has neither), so a retry with other text is a conflict, not a replay."""
    if not meta.text and not meta.links and not meta.has_ad_fields():
        return digest
    fields: dict[str, Any] = {"text": meta.text or "", "links": list(meta.links)}
    if meta.has_ad_fields():  # ad fields extend the digest only when given
        fields.update(title=meta.title, location=meta.location,
                      posted_at=_iso(meta.posted_at))
    extra = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(f"{digest}:{extra}".encode()).hexdigest()


@dataclass(slots=True)
class Verdict:
    """A content item's verdict (DESIGN.md shape; see :mod:`bastion.content.schemas`).
    ``history`` is filled by :meth:`ContentService.get` only."""

    content_id: str
    status: str
    decision: str
    decision_rule: str
    signals: list[dict[str, Any]]
    matches: list[dict[str, Any]]
    submitted_at: datetime
    reason: str | None = None
    media_type: str | None = None
    case_id: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False
    history: list[dict[str, Any]] | None = None
    ad: dict[str, Any] | None = None
    #: Filled by :meth:`ContentService.get` only: where the item stands now (its cases'
    #: states and review decisions, every action for it with its delivery state).
    current: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: ContentVerdict, *, replayed: bool = False) -> Verdict:
        """Build from a stored :class:`~bastion.store.models_api.ContentVerdict`."""
        v = row.verdict
        return cls(
            content_id=row.content_id,
            status=row.status,
            decision=row.decision,
            decision_rule=str(v.get("decision_rule", "")),
            signals=list(v.get("signals", [])),
            matches=list(v.get("matches", [])),
            submitted_at=row.created_at,
            reason=v.get("reason"),
            media_type=v.get("media_type"),
            case_id=row.case_id,
            actions=list(v.get("actions", [])),
            replayed=replayed,
            ad=v.get("ad"),
        )

    def to_json(self) -> dict[str, Any]:
        """The verdict object of the API."""
        out: dict[str, Any] = {"content_id": self.content_id, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        out["media_type"] = self.media_type
        out["signals"] = self.signals
        out["matches"] = self.matches
        out["decision"] = self.decision
        out["decision_rule"] = self.decision_rule
        out["case_id"] = self.case_id
        out["actions"] = self.actions
        out["submitted_at"] = self.submitted_at.isoformat().replace("+00:00", "Z")
        out["replayed"] = self.replayed
        if self.ad is not None:  # analysed as a classified ad (issue 8)
            out["score"] = self.ad.get("score")
            out["indicators"] = self.ad.get("indicators", [])
            out["contacts"] = self.ad.get("contacts", [])
            out["network_id"] = self.ad.get("network_id")
            out["network_size"] = self.ad.get("network_size")
            out["lexicon_version"] = self.ad.get("lexicon_version")
        if self.history is not None:
            out["history"] = self.history
        if self.current is not None:
            out["current"] = self.current
        return out


def _current_state(session: Any, content_id: str) -> dict[str, Any]:
    """Where ``content_id`` stands now, beyond its verdict at submission: ``cases`` (id,
    state, review decision and classification, decision time) and ``actions`` (id, kind,
    delivery state, creation time), each oldest first, at most 100 of each."""
    from bastion.store.models_actions import ActionRow
    from bastion.store.models_review import Case

    cases = [{"case_id": str(c.id), "state": c.state, "decision": c.decision,
              "classification": c.classification, "decided_at": _iso(c.decided_at)}
             for c in session.execute(select(Case).where(Case.content_id == content_id)
                                      .order_by(Case.id).limit(100)).scalars()]
    actions = [{"action_id": str(a.id), "kind": a.kind, "state": a.state,
                "created_at": _iso(a.created_at)}
               for a in session.execute(select(ActionRow).where(
                   ActionRow.content_id == content_id).order_by(ActionRow.id).limit(100))
               .scalars()]
    return {"cases": cases, "actions": actions}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


class ContentService:
    """Submitting and reading content verdicts (see the module docstring).

    ``matcher``: this process's :class:`~bastion.scan.service.MatchService`; ``pool``: the
    isolated decode pool (None decodes in-process: tests and debugging only); ``policy``:
    the validated policy (default: every default rule); ``vault``: where the bytes of items
    that open a case are kept, encrypted (None: not kept; the case says so).

    When the policy opens a case, the case, the encrypted media's row and the actions the
    rule enqueues are written in the verdict's transaction (the media's ciphertext file
    just before it; see :mod:`bastion.evidence.vault`).
    """

    def __init__(
        self, *, db: Any, matcher: MatchService, settings: Settings, pool: DecodePool | None,
        policy: Policy | None = None, vault: Vault | None = None,
    ) -> None:
        self.db = db
        self.matcher = matcher
        self.settings = settings
        self.pool = pool
        self.policy = policy or DEFAULT_POLICY
        self.vault = vault
        self._ads: AdRepository | None = None
        self._lexicon: Lexicon | None = None

    # -- classified ads (issue 8) --------------------------------------------------------

    def ads(self) -> AdRepository:
        """The ads of the main store and their networks (loaded on first use)."""
        if self._ads is None:
            from bastion.trafficking.adstore import shared_repository

            self._ads = shared_repository(self.db)
        return self._ads

    def _current_network(self, verdict: Verdict) -> Verdict:
        """``verdict`` with the ad's current ``network_id`` (networks merge after a verdict
        is stored; the older id survives). ``network_size`` stays the size then."""
        if verdict.ad is None or not verdict.ad.get("network_id"):
            return verdict
        with self.db.read() as session:
            current = self.ads().current_network_id(session, verdict.content_id)
        if current is not None and current != verdict.ad["network_id"]:
            verdict.ad = {**verdict.ad, "network_id": current}
        return verdict

    def _analyse_ad(
        self, scan: ScanResult, meta: ContentMeta
    ) -> tuple[dict[str, Any] | None, dict[str, float]]:
        """Analyse the item as a classified ad when the request carries ad fields, or it
        has ``text`` and ``ads_analysis`` is on: contacts, indicators, score, and its network
        (the ad is stored and linked in its own transaction, before the verdict's; a retry
        finds it stored). Returns the verdict's ``ad`` object and the policy's indicator
        values ``ads_score``, ``ads_network_size`` (ads), ``ads_network_cities`` and
        ``ads_network_days``; ``(None, {})`` when not analysed. Raises LimitExceeded for an
        ad over the analysis limits."""
        if not (meta.has_ad_fields() or (self.settings.ads_analysis and meta.text)):
            return None, {}
        from bastion.signals.base import MIN_MATCH_QUALITY, STORED
        from bastion.trafficking.adstore import active_lexicon
        from bastion.trafficking.schemas import MAX_AD_PHOTOS, Ad
        from bastion.trafficking.service import analyse_ad

        pdq = tuple(dict.fromkeys(
            s.value for s in scan.signals
            if s.signal_type == "pdq" and isinstance(s, Signal) and s.variant == STORED
            and (s.quality is None or s.quality >= MIN_MATCH_QUALITY)))[:MAX_AD_PHOTOS]
        ad = Ad(ad_id=meta.content_id, text=meta.text or "", title=meta.title,
                location=meta.location, posted_at=meta.posted_at, pdq=pdq)
        if self._lexicon is None:
            self._lexicon = active_lexicon(self.settings.home)
        result = analyse_ad(ad, self._lexicon)
        repo = self.ads()
        try:
            with self.db.write() as session:
                kept = repo.get(session, ad.ad_id)
                if kept is None:
                    kept = repo.keep(session, ad, result, source="api")
        except BaseException:
            repo.discard()
            raise
        assert kept.network_id is not None
        facts = {"ads_score": kept.score, **repo.policy_facts(kept.network_id)}
        size = int(facts["ads_network_size"])
        body = {
            "score": kept.score,
            "indicators": [i.to_json() for i in kept.indicators],
            "contacts": [c.to_json() for c in kept.contacts],
            "network_id": kept.network_id,
            "network_size": size,
            "lexicon_version": kept.lexicon_version,
        }
        return body, facts

    # -- hashing -------------------------------------------------------------------------

    def hash(
        self, data: bytes, *, label: str | None = None,
        variants: Literal["none", "query", "bank"] = "none",
    ) -> HashResult:
        """Every signal of ``data`` (nothing stored, nothing matched); never raises for bad
        content (``not_scanned`` with a reason). ``variants="query"`` adds the robustness
        variants a submission is matched with (trimmed borders, bands, centre crop)."""
        return hash_bytes(
            data, path=label, limits=self.settings.limits, fast_decode=self.settings.fast_decode,
            pool=self.pool, variants=variants,
        )

    # -- reading -------------------------------------------------------------------------

    def _existing(self, content_id: str, digest: str) -> Verdict | None:
        with self.db.read() as session:
            row = session.execute(
                select(ContentVerdict).where(ContentVerdict.content_id == content_id)
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.request_digest != digest:
                raise Conflict(
                    f"content_id {content_id!r} was already submitted with different content; "
                    "a content_id names one item: submit changed content under a new id"
                )
            found = Verdict.from_row(row, replayed=True)
        return self._current_network(found)

    def get(self, content_id: str) -> Verdict:
        """The stored verdict of ``content_id`` with its history (oldest first): the
        ``submitted`` event, retro-hunt matches found later, and events later services
        append. Raises :class:`NotFound`."""
        with self.db.read() as session:
            row = session.execute(
                select(ContentVerdict).where(ContentVerdict.content_id == content_id)
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no verdict for content_id {content_id!r}")
            verdict = Verdict.from_row(row)
            history: list[tuple[datetime, int, dict[str, Any]]] = []
            for ev in session.execute(
                select(ContentVerdictEvent)
                .where(ContentVerdictEvent.verdict_id == row.id)
                .order_by(ContentVerdictEvent.id)
            ).scalars():
                history.append(
                    (ev.at, 0, {"at": _iso(ev.at), "event": ev.kind, "actor": ev.actor,
                                **(ev.detail or {})})
                )
            for rm in session.execute(
                select(RetrohuntMatch)
                .where(RetrohuntMatch.content_id == content_id)
                .order_by(RetrohuntMatch.id)
            ).scalars():
                history.append(
                    (rm.found_at, 1, {
                        "at": _iso(rm.found_at),
                        "event": "retrohunt_match",
                        "match": {
                            "bank": rm.bank_name,
                            "entry_id": None if rm.entry_id is None else str(rm.entry_id),
                            "signal_type": rm.signal_type,
                            "distance": rm.distance,
                            "transform": rm.transform,
                        },
                    })
                )
            history.sort(key=lambda h: (h[0], h[1]))
            verdict.history = [h[2] for h in history]
            verdict.current = _current_state(session, content_id)
        return self._current_network(verdict)

    # -- submitting ----------------------------------------------------------------------

    def submit_bytes(
        self, data: bytes, meta: ContentMeta, *, actor: str, source: Source = "upload"
    ) -> Verdict:
        """Scan ``data`` (an upload or fetched body held in memory), decide and store.
        Returns the stored verdict on a retry. Raises :class:`Conflict`,
        :class:`~bastion.errors.NotReady` (indexes loading: nothing stored)."""
        digest = with_text_digest(digest_bytes(data), meta)
        existing = self._existing(meta.content_id, digest)
        if existing is not None:
            return existing
        self.matcher.require_ready()
        hashed = self.hash(data, label=None, variants="query")
        scan = self.matcher.scan_result(hashed, content_id=meta.content_id)
        self._add_text_matches(scan, meta, hashed=hashed.status == "hashed")
        return self._store(scan, meta, digest=digest, actor=actor, source=source, data=data)

    def _add_text_matches(self, scan: ScanResult, meta: ContentMeta, *, hashed: bool) -> None:
        """Add the matches of the item's ``text`` and ``links`` against the URL and keyword
        lists (issue 7) to ``scan`` and recompute its status."""
        if not meta.text and not meta.links:
            return
        scan.matches = scan.matches + self.matcher.match_text(meta.text or "", meta.links)
        scan.status = status_of(hashed, scan.matches)

    def submit_text(self, meta: ContentMeta, *, actor: str) -> Verdict:
        """Match an item that is only ``text`` and/or ``links`` (a post, message, ad or
        profile) against the URL and keyword lists, decide and store. Raises
        :class:`Conflict`, :class:`~bastion.errors.NotReady`, :class:`InvalidInput`."""
        digest = with_text_digest(digest_signals([]), meta)
        existing = self._existing(meta.content_id, digest)
        if existing is not None:
            return existing
        self.matcher.require_ready()
        scan = ScanResult(
            path=None, status="no_match", matches=[], signals=[], media_type="text",
            content_id=meta.content_id,
        )
        self._add_text_matches(scan, meta, hashed=True)
        return self._store(scan, meta, digest=digest, actor=actor, source="text")

    def submit_signals(
        self, signals: list[Signal | VideoSignal], meta: ContentMeta, *, actor: str
    ) -> Verdict:
        """Match signals the platform computed itself (hash-only), decide and store.
        Raises :class:`Conflict`, :class:`~bastion.errors.NotReady`."""
        digest = with_text_digest(digest_signals(signals), meta)
        existing = self._existing(meta.content_id, digest)
        if existing is not None:
            return existing
        matches = self.matcher.match_signals(signals)
        media = "video" if any(isinstance(s, VideoSignal) for s in signals) else None
        if media is None and any(s.signal_type == "pdq" for s in signals):
            media = "image"
        scan = ScanResult(
            path=None, status=status_of(True, matches), matches=matches,
            signals=list(signals), media_type=media, content_id=meta.content_id,
        )
        self._add_text_matches(scan, meta, hashed=True)
        return self._store(scan, meta, digest=digest, actor=actor, source="signals")

    def _store(
        self, scan: ScanResult, meta: ContentMeta, *, digest: str, actor: str, source: Source,
        data: bytes | None = None,
    ) -> Verdict:
        ad, ad_facts = self._analyse_ad(scan, meta)
        outcome = self.policy.evaluate(scan, indicators=ad_facts or None)
        # The media file is encrypted and written before the transaction (no fsync while
        # holding database locks); its row is added inside it.
        sealed = (self.vault.seal(data) if outcome.open_case and data is not None
                  and self.vault is not None else None)
        pending_text = self._seal_text(meta, keep=outcome.open_case or scan.status == "match")
        now = utcnow()
        body: dict[str, Any] = {
            "signals": [s.to_json() for s in scan.signals],
            "matches": [m.to_json() for m in scan.matches],
            "reason": scan.reason,
            "media_type": scan.media_type,
            "decision_rule": outcome.rule,
            "actions": [],
        }
        if ad is not None:
            body["ad"] = ad
        try:
            with self.db.write() as session:
                row = self._insert(session, scan, meta, body, outcome.decision, digest,
                                   source, actor, now)
                self._open_case(session, row, scan, meta, outcome, body, actor, now, source,
                                sealed)
                if pending_text is not None:  # kept with its case, or on the benign clock
                    pending_text.record(
                        session, content_id=meta.content_id, actor=actor,
                        case_id=None if row.case_id is None else int(row.case_id),
                        delete_after=None if row.case_id else now + timedelta(
                            days=self.settings.review.benign_media_days))
                # Audited last: every writer takes the case's unique key before the audit
                # chain's head lock (see bastion.store.audit), so none wait in a cycle.
                record_audit_event(
                    session, actor=actor, action="content.submit",
                    object_type="content_verdict", object_id=str(row.id),
                    detail={"status": scan.status, "decision": outcome.decision,
                            "matches": len(scan.matches)},
                )
                verdict = Verdict.from_row(row)
        except BaseException as exc:
            if sealed is not None and self.vault is not None:
                self.vault.discard(sealed)
            if pending_text is not None:
                pending_text.discard()
            if not isinstance(exc, IntegrityError):
                raise
            # Another request stored this content_id first: answer as a retry would.
            existing = self._existing(meta.content_id, digest)
            if existing is None:  # pragma: no cover - the winner's row vanished
                raise
            return existing
        return verdict

    def _seal_text(self, meta: ContentMeta, *, keep: bool) -> PendingText | None:
        """The item's ``text``, ``title`` and ``links`` sealed in the vault when ``keep``
        (it opens a case or matched) and there is a vault (:mod:`bastion.evidence.texts`)."""
        if not keep or self.vault is None:
            return None
        from bastion.evidence.texts import PendingText, kept_text_of

        kept = kept_text_of(meta.text, meta.title, meta.links,
                            max_chars=self.settings.review.kept_text_max_chars)
        return None if kept is None else PendingText.seal(self.vault, kept)

    def _open_case(
        self, session: Session, row: ContentVerdict, scan: ScanResult, meta: ContentMeta,
        outcome: PolicyOutcome, body: dict[str, Any], actor: str, now: datetime,
        source: Source, sealed: Sealed | None,
    ) -> None:
        """The policy's case and actions, in the verdict's transaction."""
        from bastion.actions.outbox import enqueue
        from bastion.cases.service import open_case

        case_id: str | None = None
        if outcome.open_case:
            store = sealed is not None and self.vault is not None
            case = open_case(
                session, content_id=meta.content_id, user_id=meta.user_id, verdict_id=row.id,
                source="not_scanned" if scan.status == "not_scanned" else "match",
                rule=outcome.rule, base_priority=outcome.priority, hide=outcome.hide,
                matches=list(body["matches"]),
                media="stored" if store else ("hashes_only" if source == "signals" else "none"),
                actor=actor, now=now)
            case_id = str(case.id)
            row.case_id = case_id
            if store:
                assert self.vault is not None and sealed is not None
                self.vault.record(session, sealed, content_id=meta.content_id,
                                  case_id=case.id, actor=actor)
        actions: list[dict[str, Any]] = []
        for kind in outcome.actions:
            key = hashlib.sha256(f"{meta.content_id}\0{kind}".encode()).hexdigest()[:32]
            a = enqueue(session, kind=kind, settings=self.settings, content_id=meta.content_id,
                        user_id=meta.user_id, case_id=case_id,
                        payload={"content_id": meta.content_id, "rule": outcome.rule},
                        idempotency_key=f"verdict-{kind}-{key}", now=now)
            actions.append({"id": str(a.id), "kind": kind})
        if case_id is not None or actions:
            row.verdict = {**row.verdict, "actions": actions}
            session.flush()

    def _insert(
        self, session: Session, scan: ScanResult, meta: ContentMeta, body: dict[str, Any],
        decision: str, digest: str, source: Source, actor: str, now: datetime,
    ) -> ContentVerdict:
        log_id = log_item(
            session, signals=scan.signals, content_id=meta.content_id, source=f"api:{source}",
            media_type=scan.media_type, scanned_at=now,
        )
        row = ContentVerdict(
            content_id=meta.content_id, request_digest=digest, source=source,
            user_id=meta.user_id, status=scan.status, decision=decision, verdict=body,
            meta=meta.stored_json(), log_item_id=log_id, case_id=None,
            created_at=now, updated_at=now,
        )
        session.add(row)
        session.flush()
        session.add(ContentVerdictEvent(
            verdict_id=row.id, at=now, kind="submitted", actor=actor[:200],
            detail={"status": scan.status, "decision": decision,
                    "matches": len(scan.matches), "source": source},
        ))
        session.flush()
        return row
