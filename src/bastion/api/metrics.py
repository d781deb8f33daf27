"""Prometheus metrics of one API process (``GET /metrics``, text exposition format).

=========================================  ==============================================
metric                                     meaning
=========================================  ==============================================
``bastion_http_requests_total``            requests by route template, method, status
``bastion_http_request_duration_seconds``  latency histogram by route template
``bastion_verdicts_total``                 verdicts stored, by status and decision
``bastion_index_ready``                    1 once the bank indexes are loaded
``bastion_index_entries``                  live entries per index (``pdq:whole``, ``md5`` ...)
``bastion_index_load_seconds``             seconds the last snapshot load took
``bastion_actions``                        outbox actions by state (alert on ``dead`` or
                                           ``blocked`` > 0: blocked means no webhook
                                           endpoint is configured for the kind)
``bastion_report_alerts``                  CyberTipline reports needing attention, by
                                           ``kind``: ``overdue`` (not submitted within
                                           ``report_alert_hours``), ``needs_reconciliation``,
                                           ``failed``, ``no_credentials`` (approved but
                                           CyberTipline credentials not configured; alert
                                           on any > 0)
``bastion_preserved_items``                reported items under preservation
``bastion_preservation_purge_due``         preserved items past their clock, unheld
                                           (alert when it stays > 0: the purge is not running)
=========================================  ==============================================

Each app has its own registry (several apps in one test process never collide).
Labels hold route templates, never ids, hashes or content.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.config import Settings
from bastion.scan.service import MatchService
from bastion.store.database import Database

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One process's metrics registry and instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bastion_http_requests_total", "HTTP requests", ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_http_request_duration_seconds", "HTTP request latency", ("route",),
            buckets=_BUCKETS, registry=self.registry,
        )
        self.verdicts = Counter(
            "bastion_verdicts_total", "Verdicts stored", ("status", "decision"),
            registry=self.registry,
        )
        self.index_ready = Gauge(
            "bastion_index_ready", "1 once bank indexes are loaded", registry=self.registry
        )
        self.index_entries = Gauge(
            "bastion_index_entries", "Live entries per index", ("index",), registry=self.registry
        )
        self.index_load_seconds = Gauge(
            "bastion_index_load_seconds", "Seconds the last index load took",
            registry=self.registry,
        )
        self.actions = Gauge(
            "bastion_actions", "Outbox actions by state", ("state",), registry=self.registry
        )
        self.report_alerts = Gauge(
            "bastion_report_alerts", "CyberTipline reports needing attention", ("kind",),
            registry=self.registry,
        )
        self.preserved = Gauge(
            "bastion_preserved_items", "Reported items under preservation",
            registry=self.registry,
        )
        self.purge_due = Gauge(
            "bastion_preservation_purge_due", "Preserved items past their clock, unheld",
            registry=self.registry,
        )

    def refresh_alerts(self, db: Database, settings: Settings) -> None:
        """Set the outbox, report and preservation gauges from the store."""
        from sqlalchemy import func, select

        from bastion.actions.outbox import counts
        from bastion.evidence.preservation import due_for_purge
        from bastion.reporting.service import alert_counts
        from bastion.store.models_preservation import PreservedItem

        with db.read() as session:
            for state, n in counts(session).items():
                self.actions.labels(state=state).set(n)
            for kind, n in alert_counts(session, settings=settings).items():
                self.report_alerts.labels(kind=kind).set(n)
            self.preserved.set(session.execute(
                select(func.count()).select_from(PreservedItem)).scalar_one())
            self.purge_due.set(len(due_for_purge(
                session, preservation_days=settings.preservation_days)))

    def render(self, matcher: MatchService, *, db: Database | None = None,
               settings: Settings | None = None) -> bytes:
        """The exposition text, index gauges refreshed from ``matcher`` and, given ``db``
        and ``settings``, the alert gauges from the store (:meth:`refresh_alerts`)."""
        if db is not None and settings is not None:
            self.refresh_alerts(db, settings)
        self.index_ready.set(1 if matcher.ready else 0)
        if matcher.ready:
            for name, n in matcher.matcher.stats().entries.items():
                self.index_entries.labels(index=name).set(n)
        if matcher.load_seconds is not None:
            self.index_load_seconds.set(matcher.load_seconds)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts requests and their latency by route template (ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            m = self.metrics()
            m.requests.labels(template, scope.get("method", ""), str(status)).inc()
            m.latency.labels(template).observe(time.perf_counter() - t0)
