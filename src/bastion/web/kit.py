"""What a UI page module needs from :func:`bastion.web.app.build_ui`: the app to add routes
to, the template environment, settings, database, vault and policy, and the shared
``render``/``page``/``viewer_of`` helpers. Page modules (``bastion.web.reports``,
``bastion.web.ads``) define ``register(kit: UiKit) -> None``.

``case_context`` holds functions ``(session, case, viewer) -> dict`` whose results are
added to the case page's template context (read-only session; no audit events there: a
provider that must audit what it shows opens its own write unit of work on ``kit.db``, as
:mod:`bastion.web.text` does for the text it decrypts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from bastion.config import Settings
from bastion.evidence.vault import Vault
from bastion.policy.rules import Policy
from bastion.store.database import Database
from bastion.web.guard import Viewer

#: ``(session, case, viewer) -> extra template context`` for the case page.
CaseContext = Callable[[Any, Any, Viewer], dict[str, Any]]


@dataclass(slots=True)
class UiKit:
    """The UI app and the helpers its page modules share (see the module docstring)."""

    app: FastAPI
    env: Environment
    settings: Settings
    db: Database
    vault: Vault | None
    policy: Policy
    #: ``render(template, status=200, **ctx)``: a page without a signed-in viewer.
    render: Callable[..., HTMLResponse]
    #: ``page(template, viewer, **ctx)``: a page for a signed-in viewer (break prompts).
    page: Callable[..., HTMLResponse]
    #: ``viewer_of(request, count_time=True)``: the signed-in viewer, or NotSignedIn.
    viewer_of: Callable[..., Viewer]
    #: ``await posted(request, *roles, max_fields=10)``: ``(viewer, form)`` of a POST, its
    #: CSRF token checked and the viewer's role one of ``roles`` (if given).
    posted: Callable[..., Awaitable[tuple[Viewer, Any]]]
    case_context: list[CaseContext] = field(default_factory=list)
    #: Templates included in the case page after "Why it is here" (in order).
    case_templates: list[str] = field(default_factory=list)
    #: Templates included in the case page's decision form, before its button.
    decide_templates: list[str] = field(default_factory=list)
