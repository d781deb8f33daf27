"""Ad network pages of the review UI (issue 8): ``/ui/networks`` and ``/ui/networks/{id}``,
and a box on the case page of an ad that links to its network.

- ``/ui/networks``: networks of at least ``min_size`` ads (default 2), sorted by size (then
  most recent) or by most recent posting, :data:`PAGE_SIZE` per page: size, cities, first
  and last seen, days spanned, most common indicators, highest score.
- ``/ui/networks/{network_id}``: a graph of the ads and what links them (shared contacts as
  nodes; shared photos and near-duplicate text as arcs), a timeline (one lane per city, so
  movement shows), the cities with dates in posting order, the shared template with its
  varying slots marked, the network's indicators with their sources, its contacts, and its
  ads with links to their cases. A merged-away id redirects (303) to the surviving network.
  Viewing it is audited (``network.view``).

Both pictures are SVG made here (no script, no inline style: presentation attributes only,
so the strict CSP holds) with a fixed layout: the same network draws the same picture.

Who sees what: reviewers and admins see everything. Auditors check the process, not the
content: they see the structure (ads, dates, cities, scores, indicator ids and counts, kinds
of link, cases) but no ad text, no template, no slot values and no contact values (contacts
are shown as ``phone 1``, ``email 1``...). The same rule applies to the case-page box.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import select

from bastion.errors import BastionError, NotFound
from bastion.store.audit import record_audit_event
from bastion.store.models_ads import StoredAd
from bastion.store.models_review import Case
from bastion.trafficking.adstore import AdRepository, active_lexicon, shared_repository
from bastion.trafficking.networks import AdNetworks, Link, Network, NetworkAd, Overview
from bastion.web.app import HEADERS
from bastion.web.guard import Viewer
from bastion.web.kit import UiKit

PREFIX = "/ui"
#: Networks per list page.
PAGE_SIZE = 50
#: Ads drawn in the graph (the earliest postings); the ads table lists up to MAX_LISTED.
GRAPH_ADS = 60
#: Ads listed on a network page.
MAX_LISTED = 500
#: Characters of an ad's text shown in the ads table.
SNIPPET_CHARS = 240
#: Ads aligned for the template (the oldest).
TEMPLATE_ADS = 30

_NETWORK_ID = re.compile(r"^net-\d{1,12}$")
#: Colours of link kinds (graph strokes and legend).
COLOURS = {"contact": "#5a6472", "photo": "#b35900", "text": "#0b4f9c"}


def sees_text(viewer: Viewer) -> bool:
    """Reviewers and admins see ad text, templates and contact values; auditors do not."""
    return viewer.role in ("reviewer", "admin")


def _fmt(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M")


def contact_labels(members: list[NetworkAd], *, show_values: bool) -> dict[tuple[str, str], str]:
    """A display label per distinct ``(kind, value)`` contact of ``members``: the value
    itself, or ``kind n`` (numbered per kind in order of first posting) when values are
    hidden."""
    labels: dict[tuple[str, str], str] = {}
    per_kind: Counter[str] = Counter()
    for ad in members:
        for kind, value in ad.contacts:
            if (kind, value) in labels:
                continue
            per_kind[kind] += 1
            labels[(kind, value)] = value if show_values else f"{kind} {per_kind[kind]}"
    return labels


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def graph_svg(members: list[NetworkAd], links: tuple[Link, ...], *, show_values: bool,
              case_of: dict[str, int], max_ads: int = GRAPH_ADS) -> Markup:
    """The network as SVG: ads in a column (posting order, the first ``max_ads``), contacts
    that two or more of them share in a second column joined to their ads, and recorded
    photo and text links as arcs left of the ads. An ad with a case links to it. Labels
    are escaped; contact values appear only when ``show_values``."""
    shown = members[:max_ads]
    row, top, arc_x, ad_x, contact_x = 30, 64, 48, 300, 600
    index = {ad.ad_id: i for i, ad in enumerate(shown)}
    owners: dict[tuple[str, str], list[int]] = {}
    for i, ad in enumerate(shown):
        for kv in dict.fromkeys(ad.contacts):
            if kv[0] in ("phone", "email", "handle"):
                owners.setdefault(kv, []).append(i)
    shared = [(kv, ids) for kv, ids in owners.items() if len(ids) >= 2]
    labels = contact_labels(members, show_values=show_values)
    height = top + row * max(len(shown), len(shared), 1) + 20
    width = 900
    y_ad = [top + row * i for i in range(len(shown))]
    y_contact = [top + row * k for k in range(len(shared))]
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="graph-title '
        'graph-desc" class="graph">',
        '<title id="graph-title">Ads of this network and what links them</title>',
        f'<desc id="graph-desc">{len(shown)} of {len(members)} ads in posting order; '
        f'{len(shared)} shared contacts; arcs are shared photos (orange) and near-duplicate '
        'text (blue).</desc>',
    ]
    legend = (("contact", "shared contact"), ("photo", "shared photo"),
              ("text", "near-duplicate text"))
    for k, (kind, name) in enumerate(legend):
        x = 10 + 200 * k
        out.append(f'<line x1="{x}" y1="16" x2="{x + 28}" y2="16" stroke="{COLOURS[kind]}" '
                   f'stroke-width="3"/><text x="{x + 34}" y="20" font-size="13" '
                   f'fill="#222">{name}</text>')
    out.append('<text x="10" y="44" font-size="12" fill="#444">Ads (posting order)</text>')
    out.append(f'<text x="{contact_x + 12}" y="44" font-size="12" fill="#444">'
               'Shared contacts</text>')
    # edges first, nodes on top
    for k, (_, ids) in enumerate(shared):
        for i in ids:
            out.append(f'<line x1="{ad_x}" y1="{y_ad[i]}" x2="{contact_x}" y2="{y_contact[k]}" '
                       f'stroke="{COLOURS["contact"]}" stroke-width="1.2" '
                       'stroke-opacity="0.7"/>')
    seen: set[tuple[str, str, str]] = set()
    for lk in links:
        if lk.kind not in ("photo", "text") or lk.a not in index or lk.b not in index:
            continue
        key = (min(lk.a, lk.b), max(lk.a, lk.b), lk.kind)
        if key in seen:
            continue
        seen.add(key)
        ya, yb = y_ad[index[lk.a]], y_ad[index[lk.b]]
        # arcs bulge left of the ads' anchor dots, wider for ads further apart
        reach = min(arc_x - 4, 6 + abs(yb - ya) // 8 + (4 if lk.kind == "photo" else 0))
        out.append(f'<path d="M {arc_x} {ya} C {arc_x - reach} {ya}, {arc_x - reach} {yb}, '
                   f'{arc_x} {yb}" fill="none" stroke="{COLOURS[lk.kind]}" stroke-width="2">'
                   f'<title>{escape(lk.kind)} link {escape(lk.a)} - {escape(lk.b)} '
                   f'({escape(lk.detail)})</title></path>')
    for i, ad in enumerate(shown):
        y = y_ad[i]
        label = escape(_short(ad.ad_id, 22))
        when = ad.posted_at.strftime("%Y-%m-%d") if ad.posted_at else "undated"
        city = escape(_short(ad.location or "-", 16))
        node = (f'<circle cx="{ad_x}" cy="{y}" r="7" fill="#0b4f9c"/>'
                f'<circle cx="{arc_x}" cy="{y}" r="3" fill="#0b4f9c"/>'
                f'<text x="{arc_x + 10}" y="{y + 4}" font-size="12" fill="#111">{label} · '
                f'{when} · '
                f'{city}</text>')
        case_id = case_of.get(ad.ad_id)
        if case_id is not None:
            node = (f'<a href="{PREFIX}/cases/{case_id}"><title>Case {case_id}</title>'
                    f'{node}</a>')
        out.append(node)
    for k, (kv, ids) in enumerate(shared):
        y = y_contact[k]
        out.append(f'<rect x="{contact_x - 6}" y="{y - 6}" width="12" height="12" '
                   f'fill="#5a6472"/><text x="{contact_x + 12}" y="{y + 4}" font-size="12" '
                   f'fill="#111">{escape(_short(labels[kv], 34))} ({len(ids)} ads)</text>')
    if len(members) > len(shown):
        out.append(f'<text x="10" y="{height - 6}" font-size="12" fill="#444">'
                   f'{len(members) - len(shown)} later ads not drawn</text>')
    out.append("</svg>")
    return Markup("".join(out))


def timeline_svg(members: list[NetworkAd], cities: tuple[str, ...]) -> Markup:
    """Postings over time as SVG: one lane per city (order of first posting; ads without a
    location in a last ``-`` lane), a dot per dated ad, and a line joining the dots in time
    order, so movement between cities shows. Undated ads are counted, not drawn."""
    dated = [ad for ad in members if ad.posted_at is not None]
    lanes = [c.casefold() for c in cities]
    names = list(cities)
    if any(not (ad.location or "").strip() for ad in dated):
        lanes.append("")
        names.append("-")
    left, right, top, lane_h = 170, 840, 30, 26
    width = right + 30
    height = top + lane_h * max(1, len(lanes)) + 40
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="timeline-title" '
        'class="graph">',
        f'<title id="timeline-title">{len(dated)} dated ads over time, one lane per '
        'city</title>',
    ]
    for k, name in enumerate(names):
        y = top + lane_h * k
        out.append(f'<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ccd"/>'
                   f'<text x="8" y="{y + 4}" font-size="12" fill="#111">'
                   f'{escape(_short(name, 24))}</text>')
    if dated:
        times = [ad.posted_at.timestamp() for ad in dated if ad.posted_at]
        t0, t1 = min(times), max(times)
        span = max(t1 - t0, 1.0)

        def x_of(t: float) -> int:
            return round(left + (right - left) * (t - t0) / span)

        placed: list[tuple[int, int, NetworkAd]] = []
        for ad in sorted(dated, key=lambda a: a.posted_at.timestamp() if a.posted_at else 0):
            assert ad.posted_at is not None
            lane = (ad.location or "").strip().casefold()
            y = top + lane_h * (lanes.index(lane) if lane in lanes else len(lanes) - 1)
            placed.append((x_of(ad.posted_at.timestamp()), y, ad))
        points = " ".join(f"{x},{y}" for x, y, _ in placed)
        out.append(f'<polyline points="{points}" fill="none" stroke="#0b4f9c" '
                   'stroke-width="1.5" stroke-opacity="0.6"/>')
        for x, y, ad in placed:
            out.append(f'<circle cx="{x}" cy="{y}" r="5" fill="#b35900"><title>'
                       f'{escape(ad.ad_id)} {_fmt(ad.posted_at)}</title></circle>')
        base = top + lane_h * max(1, len(lanes)) - 6
        first = min(ad.posted_at for ad in dated if ad.posted_at)
        last = max(ad.posted_at for ad in dated if ad.posted_at)
        out.append(f'<text x="{left}" y="{base + 20}" font-size="12" fill="#444">'
                   f'{_fmt(first)}</text><text x="{right}" y="{base + 20}" font-size="12" '
                   f'fill="#444" text-anchor="end">{_fmt(last)}</text>')
    undated = len(members) - len(dated)
    if undated:
        out.append(f'<text x="8" y="{height - 4}" font-size="12" fill="#444">{undated} '
                   'undated ads not drawn</text>')
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True, slots=True)
class NetworkView:
    """What a network page shows, read under the repository's lock."""

    network: Network
    members: list[NetworkAd]
    links: tuple[Link, ...]


def _view(nets: AdNetworks, network_id: str) -> NetworkView:
    return NetworkView(nets.summary(network_id, template_ads=TEMPLATE_ADS),
                       nets.members(network_id), nets.links_of(network_id))


def _sorted(rows: list[Overview], sort: str) -> list[Overview]:
    def recent(o: Overview) -> float:
        return o.last_seen.timestamp() if o.last_seen is not None else float("-inf")

    if sort == "recent":
        return sorted(rows, key=lambda o: (-recent(o), -o.size, o.seq))
    return sorted(rows, key=lambda o: (-o.size, -recent(o), o.seq))


def _cases_of(session: Any, ad_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in range(0, len(ad_ids), 500):
        chunk = ad_ids[k : k + 500]
        for cid, content_id in session.execute(
                select(Case.id, Case.content_id).where(Case.content_id.in_(chunk))):
            out[content_id] = int(cid)
    return out


def network_box(session: Any, case: Any, repo: AdRepository) -> dict[str, Any]:
    """Case-page context: ``ad_network`` = the network facts of the case's item when it is
    an ad stored in ``repo``'s database (current id after merges, ads, cities, days, first
    and last seen, the cases of its other ads), else None. Every role sees these facts;
    none of them is ad text."""
    content_id = str(case.content_id)
    found = session.execute(
        select(StoredAd.id).where(StoredAd.ad_id == content_id)).first()
    if found is None:
        return {"ad_network": None}

    def facts(nets: AdNetworks) -> dict[str, Any] | None:
        if content_id not in nets:
            return None
        nid = nets.network_of(content_id)
        sp = nets.spread(nid)
        members = nets.members(nid)
        times = [a.posted_at for a in members if a.posted_at is not None]
        cities: dict[str, str] = {}
        for a in members:
            c = (a.location or "").strip()
            if c:
                cities.setdefault(c.casefold(), c)
        return {"network_id": nid, "ads": sp.ads, "cities": list(cities.values()),
                "days": sp.days, "first_seen": _fmt(min(times) if times else None),
                "last_seen": _fmt(max(times) if times else None),
                "others": [a.ad_id for a in members if a.ad_id != content_id][:MAX_LISTED]}

    try:
        got = repo.read(facts, session)
    except BastionError as exc:  # the case page still opens; the box says why
        return {"ad_network": {"error": exc.message}}
    if got is not None:
        cases = _cases_of(session, got.pop("others"))
        got["other_cases"] = sorted(cases.values())[:20]
        got["other_case_count"] = len(cases)
    return {"ad_network": got}


def register(kit: UiKit) -> None:
    """Add the network pages and the case-page box to ``kit``."""
    app = kit.app

    def repo() -> AdRepository:
        return shared_repository(kit.db)

    def box(session: Any, case: Any, viewer: Viewer) -> dict[str, Any]:
        del viewer  # the same facts for every role
        return network_box(session, case, repo())

    kit.case_context.append(box)
    kit.case_templates.append("case_network.html")

    @app.get(f"{PREFIX}/networks")
    def networks_page(
        request: Request,
        sort: Literal["size", "recent"] = "size",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        min_size: Annotated[int, Query(ge=2, le=1_000_000)] = 2,
    ) -> Response:
        viewer = kit.viewer_of(request)
        rows = _sorted(repo().overview(min_size=min_size), sort)
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        page = min(page, pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return kit.page("networks.html", viewer, rows=shown, total=len(rows), page=page,
                        pages=pages, sort=sort, min_size=min_size, fmt=_fmt)

    @app.get(f"{PREFIX}/networks/{{network_id}}")
    def network_page(request: Request, network_id: str) -> Response:
        viewer = kit.viewer_of(request)
        if len(network_id) > 20 or not _NETWORK_ID.match(network_id):
            raise NotFound("no such network (ids look like net-12)")

        def look(nets: AdNetworks) -> str | NetworkView:
            current = nets.resolve(network_id)  # one lock: no merge between the two steps
            return current if current != network_id else _view(nets, network_id)

        view = repo().read(look)
        if isinstance(view, str):
            return RedirectResponse(f"{PREFIX}/networks/{view}", status_code=303,
                                    headers=HEADERS)
        show = sees_text(viewer)
        with kit.db.write() as s:
            case_of = _cases_of(s, [a.ad_id for a in view.members])
            record_audit_event(s, actor=viewer.actor, action="network.view",
                               object_type="network", object_id=network_id,
                               detail={"ads": len(view.members), "text_shown": show})
        lexicon = active_lexicon(kit.settings.home)
        entries = {e.id: e for e in lexicon.entries}
        indicators = [
            {"id": i, "ads": n, "entry": entries.get(i)}
            for i, n in sorted(view.network.indicators.items(), key=lambda t: (-t[1], t[0]))]
        labels = contact_labels(view.members, show_values=show)
        contacts = [{"kind": k, "label": labels.get((k, v), k), "ads": n}
                    for k, v, n in view.network.contacts]
        listed = [{"ad": a, "case_id": case_of.get(a.ad_id),
                   "snippet": _short(a.text, SNIPPET_CHARS) if show else None}
                  for a in view.members[:MAX_LISTED]]
        template = view.network.template if show else None
        return kit.page(
            "network.html", viewer, net=view.network, show_text=show,
            graph=graph_svg(view.members, view.links, show_values=show, case_of=case_of),
            timeline=timeline_svg(view.members, view.network.cities),
            indicators=indicators, contacts=contacts, listed=listed,
            more=max(0, len(view.members) - MAX_LISTED), template=template,
            pieces=template.pieces() if template else [], fmt=_fmt,
            lexicon_version=lexicon.version, cases=len(case_of))
