"""Issue 3: every edit of the bridge photo in EXPECTED.tsv matches a bank holding only
``aaa-orig.jpg`` (added as a file, so its robustness variants are in the bank); nothing else
there does."""

from __future__ import annotations

import csv
from pathlib import Path

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.scan.service import MatchService
from bastion.signals.compute import hash_file
from bastion.store.database import Database

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images"
ORIG = "bridge-mods/aaa-orig.jpg"


def test_edits_of_original_match_and_nothing_else_does(db: Database) -> None:
    with db.write() as session:
        banks.create(session, data=BankCreate(name="one", label="csam"))
        banks.add_files(session, name="one", paths=[DATA / ORIG])
    svc = MatchService(db)
    svc.start(background=False, follow=False)
    wrong: list[str] = []
    with (DATA / "EXPECTED.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) > 50
    for row in rows:
        related = row["path"] == ORIG or row["same_picture_as"] == ORIG
        result = svc.scan_result(hash_file(DATA / row["path"], variants="query"))
        if related and result.status != "match":
            wrong.append(f"missed {row['path']} ({row['edit']})")
        if not related and result.status != "no_match":
            wrong.append(f"false match {row['path']}: {[m.to_json() for m in result.matches]}")
    assert wrong == []
