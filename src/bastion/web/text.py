"""The case page's text view: an item's submitted text with its match spans highlighted
(issue 7: keyword-list and URL-list matches) and, for a classified ad (issue 8), its title
and text with indicator and contact spans, each indicator's weight and source, the score,
the contacts and a link to the ad's network page.

Highlighting is done here, on the server (:func:`segments`): the text is cut at every span
boundary into runs of Unicode code points, each run carrying the spans that cover it, and
each covered run is one ``<mark>`` (classes per kind, a ``title`` naming every span over
it). Spans are code-point offsets (Python string indices), so there is no UTF-16 arithmetic
anywhere; overlapping spans simply cut the text into more runs (a run under two spans
carries both). A boundary is never put between a character and what extends it (combining
marks, variation selectors, emoji modifiers and ZWJ sequences, tag characters): a span's
start moves back and its end forward to the nearest such cluster edge, so a highlight
never splits a glyph. Invisible characters that can disguise or reorder text (zero-width
spaces, bidirectional controls, soft hyphens, C0/C1 controls) are shown as visible
``U+XXXX`` tokens (:func:`visible_html`), so a reviewer sees ``exa[U+200B]mple`` and a
right-to-left override cannot reorder what is shown. Lines take their direction from their
own first strong character (CSS ``unicode-bidi: plaintext``).

Where the text comes from: the item's kept text (:mod:`bastion.evidence.texts`, decrypted
in memory for each page view), or for an ad without one, the ``ads`` row. Who sees it:
reviewers and admins; reading it is audited (``case.text_view``, one event per page view,
naming the vault item, never the text). Auditors check the process, not the content: they
get the match facts (kind, bank, entry, span offsets; indicator ids, weights and sources;
contact kinds and whether they were disguised) but no text, no matched characters and no
contact values. Registered by :func:`register` (a case-page context provider and
``case_text.html``).
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select

from bastion.errors import BastionError, NotFound
from bastion.evidence.texts import KeptText, find_text, read_text
from bastion.store.audit import record_audit_event
from bastion.store.models_ads import StoredAd
from bastion.store.models_api import ContentVerdict
from bastion.web.guard import Viewer
from bastion.web.kit import UiKit

#: Highlight kinds (CSS class ``hl-<kind>``).
KINDS = ("keyword", "url", "link", "indicator", "counter", "contact")

_ZWJ = 0x200D


def _extends(ch: str) -> bool:
    """Whether ``ch`` attaches to the character before it (a boundary never falls before
    it): combining marks (Mn, Mc, Me), ZWJ, variation selectors, emoji skin-tone modifiers
    and tag characters."""
    cp = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or cp == _ZWJ
            or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE007F or 0xE0100 <= cp <= 0xE01EF)


def cluster_start(text: str, i: int) -> int:
    """``i`` moved back to the start of the character cluster it falls inside (see
    :func:`_extends`; a ZWJ also joins the character after it). ``0 <= i <= len(text)``."""
    while 0 < i < len(text) and (_extends(text[i]) or ord(text[i - 1]) == _ZWJ):
        i -= 1
    return i


def cluster_end(text: str, i: int) -> int:
    """``i`` moved forward to the end of the character cluster it falls inside."""
    while 0 < i < len(text) and (_extends(text[i]) or ord(text[i - 1]) == _ZWJ):
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class Span:
    """One highlighted range ``[start, end)`` in code points of a field's text, its
    ``kind`` (one of :data:`KINDS`), its ``ref`` (the 1-based row in the page's list of
    spans) and ``label`` (the tooltip: what matched, e.g. bank and entry, or weight and
    source)."""

    start: int
    end: int
    kind: str
    ref: int
    label: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of ``text`` under the same set of ``spans`` (empty: not highlighted)."""

    text: str
    spans: tuple[Span, ...] = ()

    @property
    def classes(self) -> str:
        """CSS classes of its ``<mark>``: ``hl``, ``hl-<kind>`` per kind over it, and
        ``hl-overlap`` when two or more spans cover it."""
        kinds = dict.fromkeys(s.kind for s in self.spans)
        out = ["hl", *(f"hl-{k}" for k in kinds)]
        if len(self.spans) > 1:
            out.append("hl-overlap")
        return " ".join(out)

    @property
    def title(self) -> str:
        """The tooltip: every span over it, ``#ref label``, joined by ``; ``."""
        return "; ".join(f"#{s.ref} {s.label}" for s in self.spans)

    @property
    def refs(self) -> str:
        """The span refs over it, space separated (``data-refs``)."""
        return " ".join(str(s.ref) for s in self.spans)


def segments(text: str, spans: Sequence[Span]) -> list[Segment]:
    """``text`` cut at every span boundary: consecutive :class:`Segment` whose texts
    concatenate to ``text``, each carrying the spans that cover it (in ``spans`` order).
    Span offsets are clipped to ``[0, len(text)]`` and widened to character-cluster edges
    (:func:`cluster_start`, :func:`cluster_end`); a span empty after clipping covers
    nothing. Time: O(n + k log k + c * a) for ``k`` spans, ``c`` cuts and at most ``a``
    spans over one point, over a text of ``n`` code points."""
    n = len(text)
    placed: list[tuple[int, int, int, Span]] = []
    for order, s in enumerate(spans):
        start, end = max(0, min(s.start, n)), max(0, min(s.end, n))
        if end <= start:
            continue
        placed.append((cluster_start(text, start), cluster_end(text, end), order, s))
    cuts = sorted({0, n, *(p[0] for p in placed), *(p[1] for p in placed)})
    starts: dict[int, list[tuple[int, int, int, Span]]] = {}
    for p in placed:
        starts.setdefault(p[0], []).append(p)
    out: list[Segment] = []
    active: list[tuple[int, int, int, Span]] = []
    for a, b in itertools.pairwise(cuts):
        active = [p for p in active if p[1] > a] + starts.get(a, [])
        active.sort(key=lambda p: p[2])
        piece = text[a:b]
        cover = tuple(p[3] for p in active)
        if out and not cover and not out[-1].spans:
            out[-1] = Segment(out[-1].text + piece)
        else:
            out.append(Segment(piece, cover))
    return out


#: Characters shown as a visible ``U+XXXX`` token: they are invisible or reorder text.
_SHOWN = frozenset(
    [0x00AD, 0x061C, 0x180E, 0x200B, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF, 0xFFF9,
     0xFFFA, 0xFFFB, *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A),
     *range(0x0000, 0x0009), 0x000B, 0x000C, *range(0x000E, 0x0020), *range(0x007F, 0x00A0)])


def _name(ch: str) -> str:
    return unicodedata.name(ch, "control character")


def visible_html(text: str) -> Markup:
    """``text`` escaped for HTML, with every invisible or reordering character (zero-width
    space, bidirectional controls, soft hyphen, BOM, C0/C1 controls but tab, line feed and
    carriage return) replaced by a visible token ``<span class="cp" title="U+200B ZERO
    WIDTH SPACE">U+200B</span>``. ZWJ, ZWNJ and variation selectors stay: they shape emoji
    and scripts."""
    if not any(ord(c) in _SHOWN for c in text):
        return escape(text)
    parts: list[str] = []
    for c in text:
        cp = ord(c)
        if cp in _SHOWN:
            code = f"U+{cp:04X}"
            parts.append(f'<span class="cp" title="{code} {escape(_name(c))}">{code}</span>')
        else:
            parts.append(str(escape(c)))
    return Markup("".join(parts))


# -- the page's data -----------------------------------------------------------------------


@dataclass(slots=True)
class FieldView:
    """One shown field: ``name`` (``Title``, ``Text``, ``Links``), its segments (None when
    the viewer may not see text), and the cut, if any (``shown_chars`` of ``chars``)."""

    name: str
    field_id: str
    segments: list[Segment] | None
    chars: int
    shown_chars: int
    is_links: bool = False

    @property
    def truncated(self) -> bool:
        """Whether only part of the submitted field is kept."""
        return self.shown_chars < self.chars


@dataclass(slots=True)
class SpanRow:
    """One row of the page's span list: what matched and where (``matched``: the
    original characters, None for viewers who do not see text)."""

    ref: int
    kind: str
    field: str
    span: tuple[int, int] | None
    what: str
    detail: str
    matched: str | None
    beyond: bool = False


@dataclass(slots=True)
class AdView:
    """The classified-ad facts of a case: score, lexicon version, indicators and contacts
    (their JSON objects, contact values blanked for viewers who do not see text), and the
    network id."""

    score: float | None
    lexicon_version: str | None
    network_id: str | None
    network_size: int | None
    indicators: list[dict[str, Any]]
    contacts: list[dict[str, Any]]


#: Row kinds listed in the page's table of keyword and URL matches (indicators and contacts
#: have tables of their own).
MATCH_KINDS = ("keyword", "url", "link")


@dataclass(slots=True)
class TextView:
    """Everything ``case_text.html`` shows. ``state``: ``shown``, ``hidden`` (the role
    does not see text), ``not_kept`` (no text was kept for this item) or ``unreadable``
    (the vault could not open it; ``error`` says why)."""

    state: str
    fields: list[FieldView] = field(default_factory=list)
    rows: list[SpanRow] = field(default_factory=list)
    ad: AdView | None = None
    source: str = ""
    error: str | None = None

    @property
    def match_rows(self) -> list[SpanRow]:
        """The rows of keyword and URL matches (:data:`MATCH_KINDS`)."""
        return [r for r in self.rows if r.kind in MATCH_KINDS]


def _text_matches(matches: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in matches if m.get("signal_type") in ("url", "keyword")]


def _span_of(obj: dict[str, Any]) -> tuple[int, int] | None:
    sp = obj.get("span")
    try:
        if isinstance(sp, (list, tuple)) and len(sp) == 2:
            return int(sp[0]), int(sp[1])
    except (TypeError, ValueError):
        return None
    return None


def _match_label(m: dict[str, Any]) -> tuple[str, str]:
    """``(what, detail)`` of a keyword or URL match."""
    kind = str(m.get("kind") or "")
    what = f"{m.get('signal_type')} in bank {m.get('bank')}"
    detail = f"entry {m.get('entry')!s}" + (f" ({kind})" if kind else "")
    if m.get("canonical"):
        detail += f"; canonical {m['canonical']}"
    if kind == "confusable" and m.get("host"):
        detail += f"; look-alike host {m['host']} of {m.get('listed_host')}"
    return what, detail


def _weight(w: Any) -> str:
    try:
        return f"{float(w):+.3f}"
    except (TypeError, ValueError):
        return str(w)


def build_view(
    *, matches: Sequence[dict[str, Any]], ad: dict[str, Any] | None, kept: KeptText | None,
    sees_text: bool, source: str,
) -> TextView:
    """The :class:`TextView` of one case from its keyword/URL ``matches`` (DESIGN.md match
    objects with ``span``), its verdict's ``ad`` object (issue 8: ``indicators``,
    ``contacts``, ``score``, ``network_id``; None when not an ad) and its ``kept`` text
    (None when none was kept). ``sees_text`` False leaves out the text, the matched
    characters and contact values. Spans past the kept text (a cut text) are listed and
    marked ``beyond``."""
    text_m = _text_matches(matches)
    rows: list[SpanRow] = []
    spans: dict[str, list[Span]] = {"title": [], "text": [], "links": []}
    links = list(kept.links) if kept is not None else []
    link_marks: dict[int, list[Span]] = {}

    def add(kind: str, fld: str, span: tuple[int, int] | None, what: str, detail: str,
            matched: str | None) -> None:
        ref = len(rows) + 1
        label = f"{what}: {detail}" if detail else what
        rows.append(SpanRow(ref, kind, fld, span, what, detail,
                            matched if sees_text else None))
        if span is not None and fld in spans:
            spans[fld].append(Span(span[0], span[1], kind, ref, label))

    for m in text_m:
        what, detail = _match_label(m)
        span = _span_of(m)
        kind = str(m.get("signal_type"))
        if span is None:  # a link given apart from the text
            add("link", "links", None, what, detail, m.get("matched"))
            ref = rows[-1].ref
            for i, link in enumerate(links):
                if link == m.get("matched"):
                    link_marks.setdefault(i, []).append(
                        Span(0, len(link), "link", ref, f"{what}: {detail}"))
        else:
            add(kind, "text", span, what, detail, m.get("matched"))
    ad_view: AdView | None = None
    if ad is not None:
        indicators = [dict(i) for i in ad.get("indicators", []) if isinstance(i, dict)]
        contacts = [dict(c) for c in ad.get("contacts", []) if isinstance(c, dict)]
        for ind in indicators:
            w = ind.get("weight")
            neg = isinstance(w, (int, float)) and w <= 0
            what = f"indicator {ind.get('id')}" + (" (not predictive)" if neg else "")
            detail = f"weight {_weight(w)}; source: {ind.get('source')}"
            add("counter" if neg else "indicator", str(ind.get("field", "text")),
                _span_of(ind), what, detail, ind.get("matched"))
            ind["ref"] = rows[-1].ref
            ind["weight_text"] = _weight(w)
        per_kind: dict[str, int] = {}
        for c in contacts:
            flag = ", disguised" if c.get("disguised") else ""
            per_kind[str(c.get("kind"))] = n = per_kind.get(str(c.get("kind")), 0) + 1
            value = c.get("value") if sees_text else f"{c.get('kind')} {n}"
            add("contact", str(c.get("field", "text")), _span_of(c),
                f"contact {c.get('kind')}{flag}", f"{value}", c.get("raw"))
            c["ref"] = rows[-1].ref
            if not sees_text:
                c["value"], c["raw"] = None, None
        score = ad.get("score")
        size = ad.get("network_size")
        ad_view = AdView(
            score=float(score) if isinstance(score, (int, float)) else None,
            lexicon_version=ad.get("lexicon_version"), network_id=ad.get("network_id"),
            network_size=int(size) if isinstance(size, int) else None,
            indicators=indicators, contacts=contacts)
    if not sees_text:
        return TextView("hidden", rows=rows, ad=ad_view, source=source)
    if kept is None:
        return TextView("not_kept", rows=rows, ad=ad_view, source=source)
    fields: list[FieldView] = []
    for name, fid, value, chars in (("Title", "title", kept.title, kept.title_chars),
                                    ("Text", "text", kept.text, kept.text_chars)):
        if value is None:
            continue
        fields.append(FieldView(name, fid, segments(value, spans[fid]), chars, len(value)))
        for r in rows:
            if r.field == fid and r.span is not None and r.span[1] > len(value):
                r.beyond = True
    if links:
        segs: list[Segment] = []
        for i, link in enumerate(links):
            segs.extend(segments(link, link_marks.get(i, [])))
            if i + 1 < len(links):
                segs.append(Segment("\n"))
        fields.append(FieldView("Links", "links", segs, len(links), len(links),
                                is_links=True))
    return TextView("shown", fields=fields, rows=rows, ad=ad_view, source=source)


def register(kit: UiKit) -> None:
    """Add the text view to the case page (a context provider and ``case_text.html``)."""

    def provide(session: Any, case: Any, viewer: Viewer) -> dict[str, Any]:
        verdict = session.execute(select(ContentVerdict.verdict).where(
            ContentVerdict.content_id == case.content_id)).scalar_one_or_none()
        ad = verdict.get("ad") if isinstance(verdict, dict) else None
        matches = _text_matches(case.matches)
        item = find_text(session, case.content_id)
        if not matches and ad is None and item is None:
            return {"text_view": None}
        sees = viewer.sees_media
        kept: KeptText | None = None
        source = ""
        if sees:
            try:
                kept, source = _read(kit, case, viewer, item, ad is not None)
            except BastionError as exc:
                view = build_view(matches=matches, ad=ad, kept=None, sees_text=True,
                                  source="")
                view.state, view.error = "unreadable", exc.message
                return {"text_view": view}
        return {"text_view": build_view(matches=matches, ad=ad, kept=kept, sees_text=sees,
                                        source=source)}

    kit.env.filters["visible_html"] = visible_html
    kit.case_context.append(provide)
    kit.case_templates.append("case_text.html")


def _read(kit: UiKit, case: Any, viewer: Viewer, item: Any,
          is_ad: bool) -> tuple[KeptText | None, str]:
    """The case's text for a viewer who sees text, read and audited in one write unit of
    work (``case.text_view``): the kept text from the vault, or an ad's ``ads`` row."""
    item_id = None if item is None else int(item.id)
    with kit.db.write() as s:
        if item_id is not None:
            if kit.vault is None:
                raise NotFound("no vault is configured to open the kept text")
            record_audit_event(s, actor=viewer.actor, action="case.text_view",
                               object_type="case", object_id=str(case.id),
                               detail={"evidence_id": item_id, "source": "vault"})
            return read_text(s, kit.vault, item_id), "vault"
        if not is_ad:
            return None, ""
        row = s.execute(select(StoredAd).where(StoredAd.ad_id == case.content_id)
                        ).scalar_one_or_none()
        if row is None:
            return None, ""
        record_audit_event(s, actor=viewer.actor, action="case.text_view",
                           object_type="case", object_id=str(case.id),
                           detail={"ad_id": row.ad_id, "source": "ads"})
        return KeptText(text=row.text, title=row.title, text_chars=len(row.text),
                        title_chars=len(row.title or "")), "ads"
