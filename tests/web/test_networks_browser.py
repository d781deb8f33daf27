"""The ad network pages in a real browser (Debian's headless Chromium through Playwright,
against a running ``bastion serve``): the list opens a network with the keyboard, both
SVG pictures render under the strict CSP with no violation reported, and a case node in the
graph leads to its case page. Screenshots of the network page (desktop and phone widths)
are saved in the test's output directory (``tmp_path`` or ``$BASTION_TEST_OUTPUT``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import ConsoleMessage, Response, sync_playwright
from tests.api.conftest import ServerProcess

from bastion.apikeys import service as keys
from bastion.store.database import Database, migrate
from bastion.users import service as users

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PW = "reviewer password 1"
TEXT = ("Hello, I am {name}, friendly and professional. Visiting {city} this week near the "
        "{place}. The rooms are quiet and bright, with parking behind the building and a "
        "small garden for guests to enjoy in the afternoon. Call {phone} to book today.")


def test_network_pages_in_a_real_browser(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "Debian's chromium is missing: run scripts/setup test"
    out_dir = Path(os.environ.get("BASTION_TEST_OUTPUT") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "bastion.toml").write_text(
        "[review]\nsecure_cookies = false\n\n[policy]\n[[policy.rules]]\n"
        'name = "ad_network"\nwhen = { min_indicator = { ads_network_size = 2 } }\n'
        'decision = "hold"\nopen_case = true\n')
    db = Database(f"sqlite:///{home / 'bastion.db'}")
    migrate(db)
    with db.write() as s:
        api_key = keys.create(s, name="test", scopes=["admin"])[1]
        users.create(s, name="rev", role="reviewer", password=PW, actor="test")
    db.dispose()
    server = ServerProcess(home, env={"BASTION_MASTER_KEY": "cd" * 32,
                                      "BASTION_DECODE_WORKERS": "1"}, args=("--no-worker",))
    try:
        server.wait_ready()
        verdicts = []
        for k, (name, city, place, phone) in enumerate((
                ("Mia", "Houston", "harbour", "202 555 0143"),
                ("Zoe", "Dallas", "museum", "two0two 555 01four3"),
                ("Ivy", "Austin", "orchard", "202 555 0177"))):
            r = httpx.post(server.url + "/v1/content",
                           headers={"Authorization": f"Bearer {api_key}"},
                           json={"content_id": f"ad-{k + 1}", "location": f"{city}, TX",
                                 "posted_at": f"2026-05-0{k + 1}T10:00:00Z",
                                 "text": TEXT.format(name=name, city=city, place=place,
                                                     phone=phone)}, timeout=60)
            assert r.status_code == 200, r.text
            verdicts.append(r.json())
        nid = verdicts[0]["network_id"]
        assert {v["network_id"] for v in verdicts} == {nid}
        case_id = verdicts[1]["case_id"]
        assert case_id is not None

        problems: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            ctx = browser.new_context(viewport={"width": 1366, "height": 768})
            page = ctx.new_page()

            def on_console(msg: ConsoleMessage) -> None:
                # CSP violations and script errors; failed loads are checked by URL below
                if "Failed to load resource" not in msg.text and (
                        msg.type == "error" or "Content Security Policy" in msg.text):
                    problems.append(msg.text)

            def on_response(resp: Response) -> None:
                if resp.status >= 400 and not resp.url.endswith("/favicon.ico"):
                    problems.append(f"{resp.status} {resp.url}")

            page.on("console", on_console)
            page.on("response", on_response)
            page.goto(server.url + "/ui/sign-in")
            page.fill("#name", "rev")
            page.fill("#password", PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/queue")
            page.click('nav a[href="/ui/networks"]')
            page.wait_for_url("**/ui/networks")
            page.keyboard.press("j")
            page.keyboard.press("Enter")
            page.wait_for_url(f"**/ui/networks/{nid}")
            page.wait_for_load_state("networkidle")
            sizes = page.evaluate("""() => Array.from(document.querySelectorAll('svg.graph'))
                .map(s => { const b = s.getBBox(); return [b.width, b.height]; })""")
            assert len(sizes) == 2 and all(w > 300 and h > 60 for w, h in sizes), sizes
            assert page.locator("svg.graph circle").count() >= 3 * 2 + 3
            assert page.locator("mark.slot").count() >= 3
            page.screenshot(path=str(out_dir / "network-desktop.png"), full_page=True)
            narrow = browser.new_context(viewport={"width": 390, "height": 844})
            small = narrow.new_page()
            small.on("console", on_console)
            small.on("response", on_response)
            small.goto(server.url + "/ui/sign-in")
            small.fill("#name", "rev")
            small.fill("#password", PW)
            small.click("button[type=submit]")
            small.wait_for_url("**/ui/queue")
            small.goto(server.url + f"/ui/networks/{nid}")
            # wide pictures scroll inside their box, the page itself does not
            assert small.evaluate("() => document.documentElement.scrollWidth") <= 400
            small.screenshot(path=str(out_dir / "network-phone.png"), full_page=True)
            page.click(f'svg.graph a[href="/ui/cases/{case_id}"]')
            page.wait_for_url(f"**/ui/cases/{case_id}")
            assert page.locator("#ad-network").count() == 1
            browser.close()
        assert problems == []
    finally:
        server.stop()
