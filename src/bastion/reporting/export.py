"""A JSON export of an incident for authorities without a reporting API (yet).

The UK's National Crime Agency, the IWF and other INHOPE hotlines are filed with by hand
until Bastion speaks their APIs: an admin downloads this document and enters or uploads its
facts in the authority's own form. It carries the same facts as the CyberTipline report
(incident type and time, escalation, where it happened, the reported user with IP capture
events and prior reports, the reporting person) and each file's hashes, classification and
whether anyone at the platform viewed it; never the files' bytes (they are sent, if at all,
through the authority's channel from the evidence vault) and never internal locators.

Shape (``format`` ``bastion.incident-export/1``)::

    {"format": "bastion.incident-export/1", "authority": "uk-nca",
     "generated_at": "...Z", "note": "...",
     "cybertipline_report_id": 123 | null,
     "incident": {... incident fields ..., "files": [{"file_name": ..., "hashes":
                  [{"hash_type": "MD5", "value": "..."}], ...}]}}
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bastion.errors import InvalidInput
from bastion.reporting.incident import Incident, incident_to_json
from bastion.store.types import utcnow

FORMAT = "bastion.incident-export/1"
_AUTHORITY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def export_incident(incident: Incident, *, authority: str,
                    cybertipline_report_id: int | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
    """The export document for ``authority`` (a short lowercase name such as ``uk-nca``,
    ``iwf``, ``inhope-<country>``). Raises :class:`InvalidInput` for another name."""
    if not _AUTHORITY_RE.match(authority):
        raise InvalidInput(f"authority {authority!r}: use a short lowercase name like uk-nca")
    facts = incident_to_json(incident)
    files = []
    for f in facts.pop("files"):
        f.pop("locator", None)
        f["hashes"] = f.pop("original_hashes")
        files.append(f)
    facts["files"] = files
    return {
        "format": FORMAT,
        "authority": authority,
        "generated_at": (now or utcnow()).isoformat(),
        "note": "Filed by hand until Bastion supports this authority's API; file bytes are "
                "not included.",
        "cybertipline_report_id": cybertipline_report_id,
        "incident": facts,
    }
