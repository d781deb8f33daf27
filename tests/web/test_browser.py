"""In a real browser: Playwright driving Debian's headless Chromium against a running
``bastion serve``. Sign in as a reviewer, open the queue and the case of the bridge photo
(uploaded against the sample bank), check that the picture the browser received is the
blurred greyscale preview and that its caption's keyword match is highlighted, reveal
it (an audit event appears), decide ``not_violating`` with one key, see the case leave the
queue. Then an admin follows the report alerts banner to a CyberTipline report draft and
approves it (audited with the admin as actor).
Screenshots of the case page at 1366x768 and on a 390-pixel-wide phone (and of the report
page on the phone) are saved in the test's output directory (``tmp_path``, or
``$BASTION_TEST_OUTPUT`` when set); labels, focus order and text contrast are checked.

Needs ``/usr/bin/chromium`` (``scripts/setup test`` installs Debian's package) and the
``playwright`` Python package; the browser is never downloaded."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import Response, sync_playwright
from tests.api.conftest import ServerProcess
from tests.reporting.incidents import XSD, sample_incident

from bastion.apikeys import service as keys
from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate
from bastion.config import load_settings
from bastion.reporting import service as reports
from bastion.reporting.xml import CyberTiplineSchema
from bastion.store.audit import list_audit_events
from bastion.store.database import Database, migrate
from bastion.users import service as users

BRIDGE = (Path(__file__).resolve().parents[2].parent
          / "shared/data/images/bridge-mods/aaa-orig.jpg")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PW = "reviewer password 1"


def _luminance(rgb: tuple[float, float, float]) -> float:
    def ch(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (ch(x) for x in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(css: str) -> tuple[float, float, float]:
    parts = css[css.index("(") + 1:css.index(")")].split(",")
    return float(parts[0]), float(parts[1]), float(parts[2])


def test_review_in_a_real_browser(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "Debian's chromium is missing: run scripts/setup test"
    out_dir = Path(os.environ.get("BASTION_TEST_OUTPUT") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "bastion.toml").write_text("[review]\nsecure_cookies = false\n")
    db = Database(f"sqlite:///{home / 'bastion.db'}")
    migrate(db)
    with db.write() as s:
        api_key = keys.create(s, name="test", scopes=["admin"])[1]
        users.create(s, name="rev", role="reviewer", password=PW, actor="test")
        users.create(s, name="boss", role="admin", password=PW, actor="test")
        banks.create(s, data=BankCreate(name="words", label="csam"))
        banks.add_entry(s, name="words", fields={"signal_type": "keyword", "value": "example"})
    server = ServerProcess(home, env={"BASTION_MASTER_KEY": "cd" * 32,
                                      "BASTION_DECODE_WORKERS": "1"}, args=("--no-worker",))
    try:
        server.wait_ready()
        original = BRIDGE.read_bytes()
        r = httpx.post(server.url + "/v1/content", headers={"Authorization": f"Bearer {api_key}"},
                       files={"file": ("b.jpg", original, "image/jpeg")},
                       data={"content_id": "browser-1", "user_id": "u-1",
                             "text": "caption \U0001F600 with an EXAMPLE"}, timeout=60)
        assert r.status_code == 200, r.text
        case_id = r.json()["case_id"]
        assert case_id is not None

        images: list[tuple[str, bytes]] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            ctx = browser.new_context(viewport={"width": 1366, "height": 768})
            page = ctx.new_page()

            def on_response(resp: Response) -> None:
                if resp.request.resource_type == "image":
                    images.append((resp.url, resp.body()))

            page.on("response", on_response)
            page.goto(server.url + "/ui/queue")
            assert page.url.endswith("/ui/sign-in")
            page.fill("#name", "rev")
            page.fill("#password", PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/queue")
            assert page.locator(f'a[href="/ui/cases/{case_id}"]').count() == 1
            page.keyboard.press("j")
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/ui/cases/{case_id}")
            page.wait_for_load_state("networkidle")
            assert page.locator("#preview").evaluate("img => img.complete && img.naturalWidth") > 0
            # the bytes the browser received: the blurred greyscale preview only
            assert len(images) == 1 and images[0][0].endswith(f"/ui/media/{case_id}/preview")
            prev = Image.open(io.BytesIO(images[0][1]))
            assert prev.mode == "L" and max(prev.size) == 512
            assert images[0][1] != original and original[2000:2064] not in images[0][1]

            # accessibility basics: every visible input has a label, text contrast, focus
            unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
                'input:not([type=hidden]), select, textarea')).filter(el =>
                !(el.id && document.querySelector('label[for="' + el.id + '"]')) &&
                !el.closest('label') && !el.getAttribute('aria-label')).length""")
            assert unlabelled == 0
            # The caption's keyword match is highlighted (after an astral emoji), readable.
            mark = page.locator("#field-text mark.hl-keyword")
            assert mark.count() == 1 and mark.is_visible() and mark.inner_text() == "EXAMPLE"
            fg = _rgb(mark.evaluate("m => getComputedStyle(m).color"))
            bg = _rgb(mark.evaluate("m => getComputedStyle(m).backgroundColor"))
            lo, hi = sorted((_luminance(fg), _luminance(bg)))
            assert (hi + 0.05) / (lo + 0.05) >= 7.0
            fg = _rgb(page.evaluate("getComputedStyle(document.body).color"))
            bg = _rgb(page.evaluate("getComputedStyle(document.body).backgroundColor"))
            lo, hi = sorted((_luminance(fg), _luminance(bg)))
            assert (hi + 0.05) / (lo + 0.05) >= 7.0
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip"
            page.evaluate("document.activeElement.blur()")
            page.screenshot(path=str(out_dir / "case-1366x768.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(out_dir / "case-390.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, f"the case page overflows a phone screen: {width}px"
            page.set_viewport_size({"width": 1366, "height": 768})

            page.click("#reveal")
            page.wait_for_url(f"**/ui/cases/{case_id}?revealed=*")
            page.wait_for_load_state("networkidle")
            with db.read() as s:
                ev = [(e.actor, e.object_id) for e in list_audit_events(s, action="case.reveal")]
            assert ev == [("user:1", str(case_id))]
            revealed = [b for u, b in images if "/ui/reveal/" in u]
            assert len(revealed) == 1 and Image.open(io.BytesIO(revealed[0])).mode == "RGB"

            page.keyboard.press("n")  # not_violating, submitted at once
            page.wait_for_url("**/ui/queue")
            assert page.locator("#empty-queue").count() == 1

            # An admin approves a CyberTipline report draft through the banner's link.
            with db.write() as s:
                draft_id = reports.create_draft(
                    s, incident=sample_incident(files=2), schema=CyberTiplineSchema.from_path(
                        XSD), settings=load_settings(home=home), actor="test").id
            page.click("text=Sign out")
            page.wait_for_url("**/ui/sign-in")
            page.fill("#name", "boss")
            page.fill("#password", PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/queue")
            assert "1 urgent draft to approve" in page.locator("#report-alerts").inner_text()
            page.click("#report-alerts a")
            page.wait_for_url("**/ui/reports?attention=1")
            page.click(f'a[href="/ui/reports/{draft_id}"]')
            page.wait_for_url(f"**/ui/reports/{draft_id}")
            assert page.locator("#report-files tbody tr").count() == 2
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(out_dir / "report-390.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, f"the report page overflows a phone screen: {width}px"
            page.set_viewport_size({"width": 1366, "height": 768})
            page.click("#approve")
            page.wait_for_url(f"**/ui/reports/{draft_id}")
            assert page.locator("#report-state").inner_text() == "approved"
            assert page.locator("#approve").count() == 0
            with db.read() as s:
                assert reports.get(s, draft_id).approved_by == "user:2"
                (ev,) = list_audit_events(s, action="report.approve")
                assert (ev.actor, ev.object_id) == ("user:2", str(draft_id))
            browser.close()
        for name in ("case-1366x768.png", "case-390.png", "report-390.png"):
            assert (out_dir / name).stat().st_size > 1000
        print(f"screenshots in {out_dir}")
    finally:
        server.stop()
        db.dispose()
