"""Fixtures of the reporting tests: the fake CyberTipline server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.reporting.incidents import XSD

from bastion.testing.fake_cybertipline import FakeCyberTipline


@pytest.fixture
def fake() -> Iterator[FakeCyberTipline]:
    """A started fake CyberTipline (user ``esp``, password ``pw``) validating every
    document it receives against the XSD; stopped after the test."""
    f = FakeCyberTipline(XSD.read_bytes(), username="esp", password="pw")
    f.start()
    try:
        yield f
    finally:
        f.stop()
