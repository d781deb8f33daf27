"""Typed incidents for the reporting tests (no content: files are named by locator)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bastion.reporting.incident import (
    INCIDENT_TYPE_OF_DECISION,
    AccountDisabled,
    Incident,
    IncidentFile,
    InternetDetails,
    IpCaptureEvent,
    OriginalHash,
    ReportedUser,
    ReportingPerson,
)

#: NCMEC's schema, from the shared specifications next to the repository.
XSD = Path(__file__).resolve().parents[3] / "shared" / "specs" / "cybertipline.xsd"
#: Benign images used as the "files" of test reports.
IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "images"

REPORTER = ReportingPerson(first_name="Trust", last_name="Safety", email="ts@example.org",
                           phone="555-0100", legal_url="https://example.org/legal")
T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def sample_incident(decision: str = "csam", *, files: int = 2, key: str = "user:u42:case-1",
                    viewed: tuple[bool, ...] = (True, False, False, False)) -> Incident:
    """An incident of one decision kind with ``files`` files (locators ``f0``, ``f1`` ...)."""
    fs = tuple(
        IncidentFile(
            locator=f"f{i}", file_name=f"upload-{i}.jpg", content_id=f"c{i}",
            original_file_name=f"IMG_{i}.JPG", uploaded_at=T0, location_of_file=
            f"https://example.org/p/{i}", viewed_by_esp=viewed[i % len(viewed)],
            publicly_available=bool(i % 2), industry_classification="A1" if i == 0 else "B2",
            annotations=("generativeAi",) if i == 1 else (),
            original_hashes=(OriginalHash("MD5", f"{i:032x}"), OriginalHash("SHA256",
                                                                           f"{i:064x}")),
            upload_ip=IpCaptureEvent("203.0.113.7", "Upload", T0, 44312),
            exif=(("Make", "Camera"),) if i == 0 else (),
        )
        for i in range(files)
    )
    return Incident(
        key=key,
        incident_type=INCIDENT_TYPE_OF_DECISION[decision],
        incident_at=T0,
        reporter=REPORTER,
        platform="Example Classifieds",
        escalation_reason="reviewer marked urgent: ongoing abuse" if decision == "csam" else None,
        annotations=("sextortion",) if decision == "child_exploitation_other" else (),
        internet_details=(InternetDetails(urls=("https://example.org/p/1",)),
                          InternetDetails(kind="chat_im", chat_client="Example Chat")),
        reported_users=(ReportedUser(
            esp_identifier="u42", esp_service="Example Classifieds", screen_name="user42",
            display_names=("U 42",), emails=("u42@example.net",),
            ip_capture_events=(IpCaptureEvent("198.51.100.4", "Login", T0, 5555),
                               IpCaptureEvent("2001:db8::1", "Registration")),
            prior_reports=(123456,),
            permanently_disabled=AccountDisabled(T0, True, T0),
        ),),
        files=fs,
        case_ids=("case-1", "case-2"),
    )


def without_reporter(incident: Incident) -> Incident:
    """``incident`` with no reporting person configured."""
    return replace(incident, reporter=None)
