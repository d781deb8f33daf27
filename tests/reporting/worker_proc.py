"""A worker process for the SIGKILL tests: the real ActionWorker delivering the outbox and
submitting reports, with short leases and backoff, report files read from a directory.

    python worker_proc.py DB_URL CYBERTIPLINE_URL WEBHOOK_URL FILES_DIR HOME XSD
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from bastion.actions.webhooks import WebhookDeliverer
from bastion.actions.worker import ActionWorker
from bastion.config import Settings
from bastion.reporting.client import CyberTiplineClient
from bastion.reporting.files import DirectoryFileProvider
from bastion.reporting.service import ReportSubmitter, load_schema
from bastion.store.database import Database

#: Seconds a killed worker's claims last before the restarted one takes them over.
LEASE_S = 2.0


def main(argv: list[str]) -> None:
    db_url, ct_url, hook_url, files_dir, home, xsd = argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = Settings(
        home=Path(home), database_url=db_url, cybertipline_url=ct_url,
        cybertipline_username="esp", cybertipline_password="pw", cybertipline_xsd=Path(xsd),
        cybertipline_timeout_s=1.0, webhook_urls={"*": hook_url}, webhook_secret="whsec",
        webhook_timeout_s=30.0, actions_backoff_s=0.05, actions_backoff_max_s=0.2)
    db = Database(db_url)
    client = CyberTiplineClient(settings)
    submitter = ReportSubmitter(db, settings, client, DirectoryFileProvider(Path(files_dir)),
                                load_schema(settings), lease_s=LEASE_S)
    worker = ActionWorker(db, settings, WebhookDeliverer(settings), reports=submitter,
                          lease_s=LEASE_S)
    print("ready", flush=True)
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1:])
