"""``/metrics`` alert gauges: dead-lettered actions, overdue / failed / needs-reconciliation
CyberTipline reports, preserved items and those the purge should have removed."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.api.conftest import Api
from tests.reporting.incidents import XSD, sample_incident

from bastion.actions import outbox
from bastion.reporting import service as reports
from bastion.reporting.xml import CyberTiplineSchema
from bastion.store.models_actions import ActionRow, CyberTipReportRow
from bastion.store.types import utcnow


def _gauge(text: str, name: str, label: str | None = None) -> float:
    pat = rf"^{name}" + (rf'\{{[a-z]+="{label}"\}}' if label else "") + r" ([0-9.e+]+)$"
    m = re.search(pat, text, re.M)
    assert m is not None, f"{name} {label} missing"
    return float(m.group(1))


def test_metrics_alert_gauges(make_api: object) -> None:
    api: Api = make_api()  # type: ignore[operator]
    text = api.client.get("/metrics", headers=api.h("admin")).text
    assert _gauge(text, "bastion_actions", "dead") == 0
    assert _gauge(text, "bastion_report_alerts", "overdue") == 0
    assert _gauge(text, "bastion_preserved_items") == 0
    schema = CyberTiplineSchema.from_path(XSD)
    long_ago = utcnow() - timedelta(hours=api.settings.report_alert_hours + 1)
    with api.db.write() as s:
        a = outbox.enqueue(s, kind="hide", content_id="c1", settings=api.settings)
        outbox.enqueue(s, kind="takedown", content_id="c2", settings=api.settings)
        row = s.get(ActionRow, a.id)
        assert row is not None
        row.state = "dead"
        reports.create_draft(s, incident=sample_incident(files=0, key="user:a:1"),
                             schema=schema, settings=api.settings, actor="t", now=long_ago)
        failed = reports.create_draft(s, incident=sample_incident(files=0, key="user:b:2"),
                                      schema=schema, settings=api.settings, actor="t")
        rep = s.get(CyberTipReportRow, failed.id)
        assert rep is not None
        rep.state = "failed"
    text = api.client.get("/metrics", headers=api.h("admin")).text
    assert _gauge(text, "bastion_actions", "dead") == 1
    assert _gauge(text, "bastion_actions", "pending") == 1
    assert _gauge(text, "bastion_report_alerts", "overdue") == 1
    assert _gauge(text, "bastion_report_alerts", "failed") == 1
    assert _gauge(text, "bastion_report_alerts", "needs_reconciliation") == 0
    assert _gauge(text, "bastion_preservation_purge_due") == 0
