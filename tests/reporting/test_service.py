"""The report state machine against the fake CyberTipline on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.reporting.incidents import IMAGES, XSD, sample_incident, without_reporter

from bastion.config import Settings
from bastion.errors import ConfigurationError, Conflict
from bastion.reporting import service as reports
from bastion.reporting.client import CyberTiplineClient, CyberTiplineRejected
from bastion.reporting.files import DirectoryFileProvider
from bastion.reporting.xml import CyberTiplineSchema, ReportInvalid, element_texts
from bastion.store.database import Database
from bastion.testing.fake_cybertipline import FakeCyberTipline

FILES = IMAGES / "misc-images"
LOCATORS = ("small.jpg", "wee.jpg", "c.png")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeCyberTipline]:
    f = FakeCyberTipline(XSD.read_bytes(), username="esp", password="pw-never-logged")
    f.start()
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture(scope="module")
def schema() -> CyberTiplineSchema:
    return CyberTiplineSchema.from_path(XSD)


def make_settings(tmp_path: Path, url: str, password: str = "pw-never-logged") -> Settings:
    return Settings(home=tmp_path, cybertipline_url=url, cybertipline_username="esp",
                    cybertipline_password=password, cybertipline_xsd=XSD,
                    actions_backoff_s=1.0, actions_backoff_max_s=30.0,
                    cybertipline_timeout_s=10.0)


def incident(files: int = 3, key: str = "user:u42:case-1",
             viewed: tuple[bool, ...] = (True, False, False)):  # type: ignore[no-untyped-def]
    inc = sample_incident("csam", files=files, key=key, viewed=viewed)
    return replace(inc, files=tuple(replace(f, locator=LOCATORS[i % 3])
                                    for i, f in enumerate(inc.files)))


class Harness:
    def __init__(self, db: Database, settings: Settings, schema: CyberTiplineSchema) -> None:
        self.db = db
        self.settings = settings
        self.clock = Clock()
        self.client = CyberTiplineClient(settings)
        self.submitter = reports.ReportSubmitter(db, settings, self.client,
                                                 DirectoryFileProvider(FILES), schema,
                                                 clock=self.clock)

    def approved(self, schema: CyberTiplineSchema, **kw: object) -> int:
        with self.db.write() as s:
            v = reports.create_draft(s, incident=incident(**kw),  # type: ignore[arg-type]
                                     schema=schema, settings=self.settings, actor="cli:test")
            reports.approve(s, v.id, actor="cli:admin", now=self.clock())
        return v.id

    def state(self, rid: int) -> reports.ReportView:
        with self.db.read() as s:
            return reports.get(s, rid)

    def run_until_settled(self, rid: int, rounds: int = 10) -> reports.ReportView:
        for _ in range(rounds):
            self.submitter.run_due(worker="w1")
            v = self.state(rid)
            if v.state not in reports.ACTIVE_STATES:
                return v
            assert v.next_attempt_at is not None
            self.clock.now = max(self.clock.now, v.next_attempt_at)
        return self.state(rid)


@pytest.fixture
def h(db: Database, tmp_path: Path, fake: FakeCyberTipline,
      schema: CyberTiplineSchema) -> Iterator[Harness]:
    harness = Harness(db, make_settings(tmp_path, fake.url), schema)
    try:
        yield harness
    finally:
        harness.client.close()


def _one_finished_report(fake: FakeCyberTipline, n_files: int) -> dict[str, object]:
    snap = fake.snapshot()
    assert len(snap["reports"]) == 1
    (report,) = snap["reports"].values()
    assert report["finished"] and not report["retracted"]
    assert len(report["files"]) == n_files
    assert all(f["fileinfo"] is not None for f in report["files"].values())
    assert snap["invalid_documents"] == []
    return report  # type: ignore[no-any-return]


def test_happy_path_uploads_describes_and_finishes(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    assert h.state(rid).state == "approved"
    v = h.run_until_settled(rid)
    assert v.state == "submitted" and v.ncmec_report_id is not None
    report = _one_finished_report(fake, 3)
    # each uploaded file's bytes arrived intact (NCMEC's MD5 equals the file's)
    import hashlib
    md5s = sorted(hashlib.md5((FILES / name).read_bytes()).hexdigest() for name in LOCATORS)
    assert sorted(f["md5"] for f in report["files"].values()) == md5s  # type: ignore[union-attr]
    assert [f.ncmec_md5 for f in v.files] == [
        hashlib.md5((FILES / name).read_bytes()).hexdigest() for name in LOCATORS]
    # fileViewedByEsp exactly for the revealed file
    viewed = {element_texts(f["fileinfo"].encode(), "fileName")[0]:  # type: ignore[index]
              element_texts(f["fileinfo"].encode(), "fileViewedByEsp")[0]  # type: ignore[index]
              for f in report["files"].values()}  # type: ignore[union-attr]
    assert viewed == {"upload-0.jpg": "true", "upload-1.jpg": "false", "upload-2.jpg": "false"}


def test_server_error_on_fileinfo_once_then_completes(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("fileinfo", code=1000)
    h.submitter.run_due(worker="w1")
    v = h.state(rid)
    assert v.state == "submitting" and v.attempts == 1
    assert v.last_error is not None and "fileinfo" in v.last_error and "1000" in v.last_error
    assert v.next_attempt_at == h.clock.now + timedelta(seconds=1)
    assert all(f.uploaded for f in v.files)
    assert h.submitter.run_due(worker="w1") == 0  # not due yet
    v = h.run_until_settled(rid)
    assert v.state == "submitted"
    _one_finished_report(fake, 3)
    assert fake.calls["submit"] == 1 and fake.calls["upload"] == 3


def test_http_503_is_retried(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("upload", code=None, http_status=503, times=2)
    v = h.run_until_settled(rid)
    assert v.state == "submitted" and v.attempts == 2
    _one_finished_report(fake, 3)


def test_validation_failure_4100_marks_the_report_failed_with_the_message(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("submit", code=4100)
    v = h.run_until_settled(rid)
    assert v.state == "failed" and v.response_code == 4100
    assert v.last_error is not None and "4100" in v.last_error
    assert "Injected failure" in v.last_error
    assert fake.snapshot()["reports"] == {}
    # an admin fixes it and approves again: submitted once
    with h.db.write() as s:
        reports.approve(s, rid, actor="cli:admin", now=h.clock())
    assert h.run_until_settled(rid).state == "submitted"
    _one_finished_report(fake, 3)


def test_failure_after_submit_resumes_without_resubmitting(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("fileinfo", code=4100)  # e.g. NCMEC rejects a fileDetails
    v = h.run_until_settled(rid)
    assert v.state == "failed" and v.ncmec_report_id is not None
    with h.db.write() as s:
        assert reports.approve(s, rid, actor="cli:admin", now=h.clock()).state == "submitting"
    assert h.run_until_settled(rid).state == "submitted"
    _one_finished_report(fake, 3)
    assert fake.calls["submit"] == 1


def test_a_report_without_reporting_person_is_refused_before_sending(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    with pytest.raises(ReportInvalid, match="reportingPerson"), h.db.write() as s:
        reports.create_draft(s, incident=without_reporter(incident()), schema=schema,
                             settings=h.settings, actor="cli:test")
    with h.db.read() as s:
        assert reports.list_reports(s) == []
    assert sum(fake.calls.values()) == 0


def test_one_report_per_incident_and_approval_rules(h: Harness,
                                                     schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    with pytest.raises(Conflict, match="already has report"), h.db.write() as s:
        reports.create_draft(s, incident=incident(), schema=schema, settings=h.settings,
                             actor="cli:test")
    with pytest.raises(Conflict), h.db.write() as s:
        reports.approve(s, rid, actor="cli:admin")


def test_wrong_credentials_fail_with_2000_and_are_never_in_messages(
        db: Database, tmp_path: Path, fake: FakeCyberTipline, schema: CyberTiplineSchema,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path, fake.url, password="wrong-password-xyz")
    h = Harness(db, settings, schema)
    caplog.set_level("DEBUG")
    try:
        rid = h.approved(schema)
        v = h.run_until_settled(rid)
    finally:
        h.client.close()
    assert v.state == "failed" and v.response_code == 2000
    assert "wrong-password-xyz" not in caplog.text and "wrong-password-xyz" not in repr(h.client)
    assert "wrong-password-xyz" not in (v.last_error or "")
    with pytest.raises(ConfigurationError, match="cybertipline_username"):
        CyberTiplineClient(Settings(home=tmp_path))


def test_retract(h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("finish", code=4000)
    assert h.run_until_settled(rid).state == "failed"
    v = h.submitter.retract(rid, actor="cli:admin")
    assert v.state == "retracted"
    (report,) = fake.snapshot()["reports"].values()
    assert report["retracted"] and not report["finished"]
    with pytest.raises(Conflict):
        h.submitter.retract(rid, actor="cli:admin")
    rid2 = h.approved(schema, key="user:u7:case-9")
    assert h.run_until_settled(rid2).state == "submitted"
    with pytest.raises(Conflict, match="already finished"):
        h.submitter.retract(rid2, actor="cli:admin")


def test_overdue_reports_alert(h: Harness, schema: CyberTiplineSchema) -> None:
    with h.db.write() as s:
        v = reports.create_draft(s, incident=incident(), schema=schema, settings=h.settings,
                                 actor="cli:test", now=h.clock())
    with h.db.read() as s:
        assert reports.overdue(s, settings=h.settings, now=h.clock()) == []
        late = h.clock() + timedelta(hours=25)
        assert [r.id for r in reports.overdue(s, settings=h.settings, now=late)] == [v.id]
        assert reports.alert_counts(s, settings=h.settings, now=late) == {
            "overdue": 1, "needs_reconciliation": 0, "failed": 0, "no_credentials": 0}


def test_fake_validates_what_it_receives(fake: FakeCyberTipline, tmp_path: Path) -> None:
    client = CyberTiplineClient(make_settings(tmp_path, fake.url))
    try:
        assert client.status().response_code == 0
        with pytest.raises(CyberTiplineRejected) as err:
            client.submit(b"<report><incidentSummary/></report>")
        assert err.value.response_code == 4100 and "incidentSummary" in err.value.description
        assert client.xsd() == XSD.read_bytes()
    finally:
        client.close()
    r = httpx.post(fake.url + "/upload", auth=("esp", "pw-never-logged"),
                   files={"file": ("a", b"x")})
    assert "<responseCode>4000</responseCode>" in r.text
    assert fake.snapshot()["invalid_documents"] == ["report"]


def test_connection_refused_on_submit_stays_approved_and_retries(
        db: Database, tmp_path: Path, schema: CyberTiplineSchema) -> None:
    h = Harness(db, make_settings(tmp_path, "http://127.0.0.1:1/ispws"), schema)
    try:
        rid = h.approved(schema)
        h.submitter.run_due(worker="w1")
    finally:
        h.client.close()
    v = h.state(rid)
    assert v.state == "approved" and v.attempts == 1 and v.ncmec_report_id is None
    assert v.last_error is not None and "cannot connect" in v.last_error


def test_environment_chooses_the_base_url(tmp_path: Path) -> None:
    from bastion.reporting.client import PRODUCTION_URL, TEST_URL, base_url

    assert base_url(Settings(home=tmp_path)) == TEST_URL == "https://exttest.cybertip.org/ispws"
    prod = Settings(home=tmp_path, cybertipline_environment="production")
    assert base_url(prod) == PRODUCTION_URL == "https://report.cybertip.org/ispws"
    custom = Settings(home=tmp_path, cybertipline_url="http://127.0.0.1:9/ispws/")
    assert base_url(custom) == "http://127.0.0.1:9/ispws"


def test_directory_provider_stays_inside_its_directory(tmp_path: Path) -> None:
    from bastion.errors import LimitExceeded
    from bastion.reporting.files import DirectoryFileProvider, FileUnavailable

    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "a.bin").write_bytes(b"abc")
    (tmp_path / "secret").write_bytes(b"no")
    p = DirectoryFileProvider(tmp_path / "inside", max_bytes=2)
    with pytest.raises(FileUnavailable, match="outside"):
        p.read("../secret")
    with pytest.raises(FileUnavailable, match="outside"):
        p.read(str(tmp_path / "secret"))
    with pytest.raises(FileUnavailable, match="cannot be read"):
        p.read("missing.bin")
    with pytest.raises(LimitExceeded):
        p.read("a.bin")
    assert DirectoryFileProvider(tmp_path / "inside").read("a.bin") == b"abc"


def test_http_404_fails_the_report_instead_of_reconciling(
        h: Harness, fake: FakeCyberTipline, schema: CyberTiplineSchema) -> None:
    rid = h.approved(schema)
    fake.fail("submit", code=None, http_status=404)
    v = h.run_until_settled(rid)
    assert v.state == "failed" and v.response_code == 4000
    assert v.last_error is not None and "HTTP 404" in v.last_error
    assert fake.snapshot()["reports"] == {}
