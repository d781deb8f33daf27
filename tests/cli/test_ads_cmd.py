"""``bastion ads scan / networks / fit`` end to end (ads in the main store of a temp home)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from bastion.cli.main import main
from bastion.trafficking.synthetic import SyntheticConfig, generate

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / ".." / "shared" / "data" / "images" / "bridge-mods" / "aaa-orig.jpg"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BASTION_CONFIG", raising=False)

    def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exc:
            main(["ads", *args])
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 0), out.out, out.err

    return _run


def _write(path: Path, rows: list[dict[str, object]], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra),
                    encoding="utf-8")
    return path


def test_scan_prints_results_keeps_ads_and_links_networks(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"ad_id": "a1", "text": "Discreet latina. Call two0two 555 0143.",
         "location": "Houston, TX", "posted_at": "2024-05-01T10:00:00Z"},
        {"ad_id": "a2", "text": "Available weekdays, new in town. Text 202.555.0143",
         "location": "Dallas, TX", "posted_at": "2024-05-03T10:00:00Z"},
        {"ad_id": "b1", "text": "Quiet garden rooms. Call 713 555 0199.",
         "location": "Austin, TX", "posted_at": "2024-05-02T10:00:00Z"},
    ]
    src = _write(tmp_path / "ads.jsonl", rows, ["{broken\n", "\n"])
    code, out, err = run("scan", "--json", str(src))
    assert code == 2 and "line 4" in err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["ad_id"] for r in results] == ["a1", "a2", "b1"]
    a1, a2, b1 = results
    assert a1["network_id"] == a2["network_id"] != b1["network_id"]
    assert a1["contacts"] == [{"kind": "phone", "value": "+12025550143",
                               "raw": "two0two 555 0143", "span": [22, 38],
                               "disguised": True}]
    assert {i["id"] for i in a1["indicators"]} == {"trustworthy-provider",
                                                   "stated-ethnicity", "obscured-phone"}
    for r in results:
        assert 0 <= r["score"] <= 1 and r["lexicon_version"] == "v1"
        for i in r["indicators"]:
            assert i["source"] and len(i["span"]) == 2
    assert a2["score"] < a1["score"]
    # a second run sees the kept ads: a new ad joins the stored network
    code, out, _ = run("scan", "--json", "-", stdin=json.dumps(
        {"ad_id": "c1", "text": "Bookings on 713-555-0199", "location": "Austin, TX"}) + "\n")
    assert code == 0
    assert json.loads(out)["network_id"] == b1["network_id"]
    code, out, _ = run("networks", "--json")
    assert code == 0
    nets = {n["network_id"]: n for n in map(json.loads, out.splitlines())}
    assert set(nets) == {a1["network_id"], b1["network_id"]}
    net = nets[a1["network_id"]]
    assert net["ad_ids"] == ["a1", "a2"]
    assert net["cities"] == ["Houston, TX", "Dallas, TX"]
    assert net["first_seen"] == "2024-05-01T10:00:00Z"
    assert net["last_seen"] == "2024-05-03T10:00:00Z"
    assert net["contacts"][0]["value"] == "+12025550143"
    assert "template" in net
    code, out, _ = run("networks")
    assert code == 0 and "2 ads" in out


def test_scan_hashes_images_and_reports_unhashable_ones(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Image.open(PHOTO) as im:
        im.convert("RGB").resize((300, 200)).save(tmp_path / "one.jpg", quality=80)
        im.convert("RGB").resize((160, 107)).save(tmp_path / "two.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    rows = [
        {"ad_id": "p1", "text": "Open today near the plaza. Call 202 555 0101.",
         "images": ["one.jpg"]},
        {"ad_id": "p2", "text": "Quiet rooms by the pier. Text 713 555 0102.",
         "images": ["two.png", "bad.jpg", "missing.jpg"]},
    ]
    src = _write(tmp_path / "ads.jsonl", rows)
    code, out, err = run("scan", "--json", str(src))
    assert code == 2
    assert "bad.jpg not scanned" in err and "missing.jpg not scanned" in err
    p1, p2 = (json.loads(x) for x in out.splitlines())
    assert p1["network_id"] == p2["network_id"]
    assert any("bad.jpg" in n for n in p2["notes"])


def test_scan_repeated_ad_id_keeps_the_first(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    row = {"ad_id": "x", "text": "Call 202 555 0101"}
    src = _write(tmp_path / "ads.jsonl", [row, {**row, "text": "changed"}])
    code, out, _ = run("scan", "--json", str(src))
    assert code == 0
    first, second = (json.loads(x) for x in out.splitlines())
    assert second["contacts"] == first["contacts"]
    assert "already stored" in second["notes"][-1]


def test_scan_missing_file_is_exit_2(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("scan", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "cannot read" in err


def test_fit_writes_the_active_lexicon(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = SyntheticConfig(networks=20, singles=20, legal=40, indicator_rate=0.7)
    rows = [{"text": s.ad.text, "location": s.ad.location, "label": int(s.trafficking)}
            for s in generate(cfg, seed=9)]
    src = _write(tmp_path / "labelled.jsonl", rows)
    code, out, _ = run("fit", "--json", str(src))
    assert code == 0
    report = json.loads(out)
    assert report["version"].startswith("v1+fit.")
    assert Path(report["written"]).is_file()
    code, out, _ = run("scan", "--json", "-", stdin=json.dumps(
        {"ad_id": "z", "text": "Discreet. Call 202 555 0101"}) + "\n")
    assert code == 0
    assert json.loads(out)["lexicon_version"] == report["version"]


def test_a_rescan_reports_the_surviving_network_after_a_merge(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = [
        {"ad_id": "x1", "text": "Call 202 555 0143 for times.", "location": "Houston, TX",
         "posted_at": "2024-05-01T10:00:00Z"},
        {"ad_id": "y1", "text": "Call 202 555 0177 for times.", "location": "Dallas, TX",
         "posted_at": "2024-05-02T10:00:00Z"},
    ]
    code, out, _ = run("scan", "--json", str(_write(tmp_path / "one.jsonl", first)))
    x1, y1 = (json.loads(line) for line in out.splitlines())
    assert code == 0 and x1["network_id"] != y1["network_id"]
    # a later batch bridges the two networks; y1, already stored, is reported again
    second = [
        {"ad_id": "xy", "text": "Call 202 555 0143 or 202 555 0177.",
         "location": "Austin, TX", "posted_at": "2024-05-05T10:00:00Z"},
        first[1],
    ]
    code, out, _ = run("scan", "--json", str(_write(tmp_path / "two.jsonl", second)))
    xy, again = (json.loads(line) for line in out.splitlines())
    assert code == 0 and xy["network_id"] == x1["network_id"]
    assert again["ad_id"] == "y1" and again["network_id"] == x1["network_id"]
    assert "ad_id already stored; first version kept" in again["notes"]
    code, out, _ = run("networks", "--json")
    nets = [json.loads(line) for line in out.splitlines()]
    assert [(n["network_id"], n["size"], n["merged_ids"], n["days"]) for n in nets] == [
        (x1["network_id"], 3, [y1["network_id"]], 4.0)]
