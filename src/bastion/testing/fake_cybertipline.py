"""A fake CyberTipline Reporting API on 127.0.0.1, for tests (a test double, kept as real code).

It implements ``GET /status``, ``GET /xsd``, ``POST /submit``, ``/upload``, ``/fileinfo``,
``/finish`` and ``/retract`` with basic auth and NCMEC's response codes (see
:mod:`bastion.reporting.client`), validates every XML document it receives against the
schema (answering 4100 with the errors), and records what it accepted so tests can check
that exactly one report exists with every file uploaded, described and finished.

On command it fails a step (:meth:`FakeCyberTipline.fail`: a response code such as 1000 or
4100, or an HTTP status), or holds a request (:meth:`FakeCyberTipline.hold`) before or after
processing it, so a test can kill the client at that moment::

    fake = FakeCyberTipline(xsd_bytes, username="u", password="p")
    fake.start()                      # fake.url is http://127.0.0.1:<port>
    fake.fail("fileinfo", code=1000)  # the next /fileinfo answers a server error, once
    ...
    fake.stop()

Run it as a process (``python -m bastion.testing.fake_cybertipline XSD STATE_JSON``) to keep
its state across the restarts of a worker under test; the state file is rewritten after
every request.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bastion.reporting.xml import CyberTiplineSchema, element_texts

#: Largest request body accepted, bytes.
MAX_BODY = 64 * 1024 * 1024

STEPS = ("status", "xsd", "submit", "upload", "fileinfo", "finish", "retract")


@dataclass
class FakeReport:
    """One report the fake accepted."""

    report_id: int
    xml: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: bool = False
    retracted: bool = False


@dataclass
class _Failure:
    code: int | None
    http_status: int | None
    times: int


class FakeCyberTipline:
    """The fake API's state and server. Thread-safe; ``calls`` counts requests per step."""

    def __init__(self, xsd: bytes, *, username: str = "user", password: str = "secret",
                 state_path: Path | None = None) -> None:
        self.xsd = xsd
        self.schema = CyberTiplineSchema(xsd)
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.reports: dict[int, FakeReport] = {}
        self.calls: dict[str, int] = dict.fromkeys(STEPS, 0)
        self.invalid_documents: list[str] = []
        self.state_path = state_path
        self._next_report = 100_000
        self._next_file = 1
        self._failures: dict[str, _Failure] = {}
        self._holds: dict[str, tuple[str, threading.Event, threading.Event]] = {}
        self._releases: list[threading.Event] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- commands -----------------------------------------------------------------------
    def fail(self, step: str, *, code: int | None = 1000, http_status: int | None = None,
             times: int = 1) -> None:
        """Make the next ``times`` requests to ``step`` fail with ``code`` (a responseCode)
        or ``http_status``, without processing them."""
        with self._lock:
            self._failures[step] = _Failure(code, http_status, times)

    def hold(self, step: str, *, when: str = "after") -> threading.Event:
        """Hold the next request to ``step`` ``before`` or ``after`` processing it (after:
        the report or file exists, the answer is never sent). Returns an event set when the
        request arrived at the hold. Holds last until :meth:`stop`."""
        arrived, release = threading.Event(), threading.Event()
        with self._lock:
            self._holds[step] = (when, arrived, release)
            self._releases.append(release)
        return arrived

    # -- inspection ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The state as JSON: reports (files, finished, retracted), calls, invalid docs."""
        with self._lock:
            return {
                "reports": {str(r.report_id): {"files": r.files, "finished": r.finished,
                                                "retracted": r.retracted, "xml": r.xml}
                            for r in self.reports.values()},
                "calls": dict(self.calls),
                "invalid_documents": list(self.invalid_documents),
                "next_report": self._next_report, "next_file": self._next_file,
            }

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`snapshot` output (a restarted fake process)."""
        with self._lock:
            for rid, r in state.get("reports", {}).items():
                self.reports[int(rid)] = FakeReport(int(rid), r["xml"], r["files"],
                                                    r["finished"], r["retracted"])
            self.calls.update(state.get("calls", {}))
            self.invalid_documents = list(state.get("invalid_documents", []))
            self._next_report = int(state.get("next_report", self._next_report))
            self._next_file = int(state.get("next_file", self._next_file))

    def _save(self) -> None:
        if self.state_path is not None:
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            tmp.replace(self.state_path)

    # -- protocol -----------------------------------------------------------------------
    @staticmethod
    def _answer(code: int, description: str, **extra: str) -> bytes:
        parts = [f"<responseCode>{code}</responseCode>",
                 f"<responseDescription>{description}</responseDescription>"]
        parts += [f"<{k}>{v}</{k}>" for k, v in extra.items()]
        return ("<?xml version='1.0' encoding='UTF-8'?><reportResponse>" + "".join(parts)
                + "</reportResponse>").encode()

    def _validated(self, doc: bytes, what: str) -> bytes | None:
        errors = self.schema.errors(doc)
        if not errors:
            return None
        self.invalid_documents.append(what)
        msg = "; ".join(errors)[:500].replace("<", "(").replace(">", ")").replace("&", "+")
        return self._answer(4100, f"Validation failed: {msg}")

    def handle(self, step: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Process one request (the HTTP handler's core): ``(HTTP status, answer)``."""
        with self._lock:
            self.calls[step] = self.calls.get(step, 0) + 1
            failure = self._failures.get(step)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._failures[step]
                if failure.http_status is not None:
                    return failure.http_status, b"fake failure"
                return 200, self._answer(failure.code or 1000, "Injected failure")
            if headers.get("authorization") != self._auth:
                return 200, self._answer(2000, "Authentication failed")
            if step == "status":
                return 200, self._answer(0, "Success")
            if step == "xsd":
                return 200, self.xsd
            if step == "submit":
                bad = self._validated(body, "report")
                if bad is not None:
                    return 200, bad
                rid = self._next_report
                self._next_report += 1
                self.reports[rid] = FakeReport(rid, body.decode())
                return 200, self._answer(0, "Success", reportId=str(rid))
            if step == "upload":
                return self._upload(headers, body)
            if step == "fileinfo":
                bad = self._validated(body, "fileDetails")
                if bad is not None:
                    return 200, bad
                rid = int(element_texts(body, "reportId")[0])
                fid = element_texts(body, "fileId")[0]
                report = self.reports.get(rid)
                if report is None or fid not in report.files:
                    return 200, self._answer(5000, "Unknown report or file")
                if report.finished:
                    return 200, self._answer(5102, "Report already finished")
                report.files[fid]["fileinfo"] = body.decode()
                return 200, self._answer(0, "Success", reportId=str(rid), fileId=fid)
            if step in ("finish", "retract"):
                form = urllib.parse.parse_qs(body.decode())
                try:
                    report = self.reports.get(int(form["id"][0]))
                except (KeyError, ValueError):
                    return 200, self._answer(4000, "Missing or invalid id")
                if report is None:
                    return 200, self._answer(5000, "Unknown report")
                if report.retracted:
                    return 200, self._answer(5101, "Report already retracted")
                if report.finished:
                    return 200, self._answer(5102, "Report already finished")
                if step == "finish":
                    report.finished = True
                    return 200, (
                        "<?xml version='1.0' encoding='UTF-8'?><reportDoneResponse>"
                        f"<responseCode>0</responseCode><reportId>{report.report_id}"
                        "</reportId><files>"
                        + "".join(f"<fileId>{f}</fileId>" for f in report.files)
                        + "</files></reportDoneResponse>").encode()
                report.retracted = True
                return 200, self._answer(0, "Success", reportId=str(report.report_id))
            return 404, b"unknown endpoint"

    def _upload(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        ctype = headers.get("content-type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        fields: dict[str, tuple[str | None, bytes]] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = (part.get_filename(), payload)
        if "id" not in fields or "file" not in fields:
            return 200, self._answer(4000, "upload needs multipart fields id and file")
        try:
            report = self.reports.get(int(fields["id"][1].decode()))
        except ValueError:
            return 200, self._answer(4000, "invalid id")
        if report is None:
            return 200, self._answer(5000, "Unknown report")
        if report.finished:
            return 200, self._answer(5102, "Report already finished")
        fid = f"f{self._next_file:06d}"
        self._next_file += 1
        data = fields["file"][1]
        md5 = hashlib.md5(data).hexdigest()
        report.files[fid] = {"name": fields["file"][0], "md5": md5, "size": len(data),
                             "fileinfo": None}
        return 200, self._answer(0, "Success", reportId=str(report.report_id), fileId=fid,
                                 hash=md5)

    # -- server -------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port`` 0: any free port) in a thread; returns the URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                step = self.path.strip("/").split("?")[0].split("/")[-1]
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                with fake._lock:
                    hold = fake._holds.pop(step, None)
                if hold is not None and hold[0] == "before":
                    hold[1].set()
                    hold[2].wait()
                    return
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                status, answer = fake.handle(step, hdrs, body)
                fake._save()
                if hold is not None:
                    hold[1].set()
                    hold[2].wait()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ispws"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        """Release held requests and stop serving."""
        with self._lock:
            for release in self._releases:
                release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def main(argv: list[str]) -> None:
    """``python -m bastion.testing.fake_cybertipline XSD STATE_JSON [PORT]``: serve until
    killed, printing the URL on the first line of stdout."""
    xsd, state = Path(argv[0]), Path(argv[1])
    fake = FakeCyberTipline(xsd.read_bytes(), state_path=state)
    if state.is_file():
        fake.load(json.loads(state.read_text()))
    print(fake.start(int(argv[2]) if len(argv) > 2 else 0), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
