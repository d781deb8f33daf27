"""The built-in ``sample`` bank: the hashes of the benign bridge photo shipped in
``samples/bridge.jpg`` (Meta's public PDQ test image, BSD licence), so integrators can
test the whole path without any real hash list.

The hashes live in ``bastion/data/sample_bank.csv`` (MD5, SHA-1, SHA-256 and the stored
PDQ, computed once with :func:`bastion.signals.pdq.pdq_hash` and the exact hashes; a test
recomputes them from the photo), so the package needs no sample files at run time.
"""

from __future__ import annotations

import io
from importlib import resources
from typing import Final

from sqlalchemy.orm import Session

from bastion.banks import service
from bastion.banks.importing import import_stream
from bastion.banks.schemas import BankCreate, BankRead
from bastion.errors import InvalidInput, NotFound

SAMPLE_BANK: Final = "sample"


def sample_bank_csv() -> bytes:
    """The bytes of the shipped sample-bank CSV."""
    return resources.files("bastion").joinpath("data/sample_bank.csv").read_bytes()


def create_sample_bank(session: Session, *, actor: str = "system") -> tuple[BankRead, bool]:
    """Create the ``sample`` bank (label ``sample``, ``auto_action`` off, not exportable)
    with the bridge photo's hashes, or top up its entries if it exists. Returns
    ``(bank, created)``. Raises :class:`InvalidInput` if the shipped data is damaged."""
    try:
        service.get(session, name=SAMPLE_BANK)
        created = False
    except NotFound:
        service.create(
            session,
            data=BankCreate(
                name=SAMPLE_BANK,
                label="sample",
                description="Hashes of the benign bridge photo (samples/bridge.jpg), for testing",
                auto_action=False,
            ),
        )
        created = True
    report = import_stream(
        session,
        name=SAMPLE_BANK,
        binary=io.BytesIO(sample_bank_csv()),
        fmt="csv",
        strict=True,
        actor=actor,
    )
    if not report.committed:
        raise InvalidInput(f"the shipped sample bank is damaged: {report.to_json()}")
    return service.get(session, name=SAMPLE_BANK), created
