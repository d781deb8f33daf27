"""Report and fileDetails documents validate against NCMEC's XSD; invalid ones are refused
before sending with a message naming the element."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.reporting.incidents import XSD, sample_incident, without_reporter

from bastion.errors import InvalidInput
from bastion.reporting.incident import (
    INCIDENT_TYPE_OF_DECISION,
    ReportingPerson,
    incident_from_json,
    incident_to_json,
)
from bastion.reporting.xml import (
    CyberTiplineSchema,
    ReportInvalid,
    build_file_details_xml,
    build_report_xml,
    element_texts,
)


@pytest.fixture(scope="module")
def schema() -> CyberTiplineSchema:
    return CyberTiplineSchema.from_path(XSD)


@pytest.mark.parametrize("decision", sorted(INCIDENT_TYPE_OF_DECISION))
def test_every_decision_kind_builds_valid_documents(schema: CyberTiplineSchema,
                                                    decision: str) -> None:
    incident = sample_incident(decision, files=3)
    doc = build_report_xml(incident, schema)
    assert schema.is_valid(doc)
    assert element_texts(doc, "incidentSummary/incidentType") == [
        INCIDENT_TYPE_OF_DECISION[decision]]
    assert element_texts(doc, "reporter/reportingPerson/email") == ["ts@example.org"]
    assert element_texts(doc, "personOrUserReported/espIdentifier") == ["u42"]
    assert element_texts(doc, "personOrUserReported/ipCaptureEvent/port") == ["5555"]
    assert element_texts(doc, "personOrUserReported/priorCTReports") == ["123456"]
    assert element_texts(doc, "incidentSummary/incidentDateTime") == ["2026-03-01T10:30:00Z"]
    escal = element_texts(doc, "incidentSummary/escalateToHighPriority")
    assert escal == (["reviewer marked urgent: ongoing abuse"] if decision == "csam" else [])
    sext = element_texts(doc, "incidentSummary/reportAnnotations/sextortion")
    assert sext == (["true"] if decision == "child_exploitation_other" else [])
    for i, f in enumerate(incident.files):
        fd = build_file_details_xml(987654, f"file-{i}", f, schema)
        assert schema.is_valid(fd)
        assert element_texts(fd, "reportId") == ["987654"]
        assert element_texts(fd, "fileId") == [f"file-{i}"]
        assert element_texts(fd, "originalFileHash") == [f"{i:032x}", f"{i:064x}"]


def test_file_viewed_by_esp_follows_the_reveal_flag(schema: CyberTiplineSchema) -> None:
    incident = sample_incident(files=4, viewed=(True, False, True, False))
    flags = [element_texts(build_file_details_xml(1, f"f{i}", f, schema), "fileViewedByEsp")
             for i, f in enumerate(incident.files)]
    assert flags == [["true"], ["false"], ["true"], ["false"]]


def test_missing_reporting_person_is_refused_naming_the_element(
        schema: CyberTiplineSchema) -> None:
    with pytest.raises(ReportInvalid, match="reportingPerson"):
        build_report_xml(without_reporter(sample_incident()), schema)
    nameless = replace(sample_incident(), reporter=ReportingPerson(email="x@example.org"))
    with pytest.raises(ReportInvalid, match="reporter/reportingPerson"):
        build_report_xml(nameless, schema)


def test_schema_errors_name_the_element(schema: CyberTiplineSchema) -> None:
    bad = replace(sample_incident(), incident_type="Something Else")
    with pytest.raises(ReportInvalid, match="incidentType"):
        build_report_xml(bad, schema)
    # the schema itself names a missing required element
    errors = schema.errors(b"<report><incidentSummary><incidentType>Child Sex Trafficking"
                           b"</incidentType><incidentDateTime>2026-01-01T00:00:00Z"
                           b"</incidentDateTime></incidentSummary></report>")
    assert errors and "reporter" in errors[0]
    f = replace(sample_incident().files[0], file_name="bad\x00name")
    with pytest.raises(ReportInvalid, match="fileName"):
        build_file_details_xml(1, "f", f, schema)


def test_hostile_xml_is_not_expanded(schema: CyberTiplineSchema) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><report>&b;</report>')
    assert not schema.is_valid(bomb)


def test_incident_json_round_trip() -> None:
    incident = sample_incident("trafficking", files=2)
    assert incident_from_json(incident_to_json(incident)) == incident


_SCHEMA = CyberTiplineSchema.from_path(XSD)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(path_choice=st.integers(min_value=0, max_value=10_000), value=_json_values)
def test_incident_parser_refuses_any_bad_json_with_invalid_input(path_choice: int,
                                                                 value: object) -> None:
    """Replace one value anywhere in a valid incident's JSON: the parser either accepts it
    or raises InvalidInput naming where; never another exception."""
    doc = incident_to_json(sample_incident(files=2))
    paths: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(doc)
    parent, key = paths[path_choice % len(paths)]
    parent[key] = value  # type: ignore[index]
    try:
        parsed = incident_from_json(doc)
    except InvalidInput as exc:
        assert exc.message.startswith("incident")
        return
    try:  # what parses builds a valid document or is refused, never crashes
        build_report_xml(parsed, _SCHEMA)
        for f in parsed.files:
            build_file_details_xml(1, "f1", f, _SCHEMA)
    except InvalidInput:
        pass


def test_exif_details_and_exif_viewed_flag(schema: CyberTiplineSchema) -> None:
    f = sample_incident(files=1).files[0]
    assert f.exif == (("Make", "Camera"),) and f.viewed_by_esp
    doc = build_file_details_xml(5, "file-0", f, schema)
    # the file was viewed; its EXIF was not (nobody is shown EXIF values)
    assert element_texts(doc, "fileViewedByEsp") == ["true"]
    assert element_texts(doc, "exifViewedByEsp") == ["false"]
    assert element_texts(doc, "details[@type='EXIF']/nameValuePair/name") == ["Make"]
    seen = build_file_details_xml(5, "file-0", replace(f, exif_viewed_by_esp=True), schema)
    assert element_texts(seen, "exifViewedByEsp") == ["true"]
    none = build_file_details_xml(5, "file-0", replace(f, exif=()), schema)
    assert element_texts(none, "exifViewedByEsp") == [] and element_texts(none, "details") == []
    every = replace(f, annotations=("animeDrawingVirtualHentai", "potentialMeme", "viral",
                                    "possibleSelfProduction", "physicalHarm", "violenceGore",
                                    "bestiality", "liveStreaming", "infant", "generativeAi"))
    doc = build_file_details_xml(5, "file-0", every, schema)
    assert schema.is_valid(doc)
    assert [element_texts(doc, f"fileAnnotations/{a}") for a in every.annotations] == [
        ["true"]] * 10


def test_control_characters_in_an_attribute_are_refused_naming_the_element(
        schema: CyberTiplineSchema) -> None:
    from bastion.reporting.incident import OriginalHash

    f = replace(sample_incident(files=1).files[0],
                original_hashes=(OriginalHash("MD5\x01", "ab" * 16),))
    with pytest.raises(ReportInvalid, match="originalFileHash: attribute value"):
        build_file_details_xml(5, "file-0", f, schema)
