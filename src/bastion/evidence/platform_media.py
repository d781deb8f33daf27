"""Fetching an item's bytes from the platform's own media endpoint.

When a platform sends only hashes (so pictures never leave its servers), a reviewer may
still need to see the item: the case page then offers to fetch it from the endpoint the
operator configured (``review.media_endpoint``, a URL with ``{content_id}``, and
``review.media_endpoint_token`` sent as a Bearer token). The endpoint is the operator's
own configuration, not a caller's URL; still, redirects are not followed, the body is
read within ``review.media_fetch_max_bytes`` and ``review.media_fetch_timeout_s``, and
the bytes must agree with the exact hashes (MD5, SHA-1, SHA-256) the platform submitted,
when it submitted any, so that a wrong file is never attached to a case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bastion.config import Settings
from bastion.errors import BastionError, ConfigurationError, LimitExceeded


class MediaUnavailable(BastionError):
    """The platform's media endpoint did not return the item (status, network, or bytes
    that do not match the submitted hashes)."""

    code = "media-unavailable"


def fetch_platform_media(settings: Settings, content_id: str,
                         signals: Sequence[dict[str, Any]] = ()) -> bytes:
    """The bytes of ``content_id`` from the media endpoint, checked against the exact
    hashes among ``signals`` (DESIGN.md signal objects). Raises
    :class:`ConfigurationError` (no endpoint), :class:`LimitExceeded`,
    :class:`MediaUnavailable`."""
    review = settings.review
    if not review.media_endpoint or "{content_id}" not in review.media_endpoint:
        raise ConfigurationError("review.media_endpoint is not set (a URL with {content_id})")
    url = review.media_endpoint.replace("{content_id}", quote(content_id, safe=""))
    headers = {}
    if review.media_endpoint_token is not None:
        headers["Authorization"] = f"Bearer {review.media_endpoint_token.get_secret_value()}"
    limit = review.media_fetch_max_bytes
    try:
        with httpx.Client(timeout=review.media_fetch_timeout_s, follow_redirects=False) as c, \
                c.stream("GET", url, headers=headers) as resp:
            if resp.status_code != 200:
                raise MediaUnavailable(f"the media endpoint answered HTTP {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise LimitExceeded(f"the platform's file is over {limit} bytes")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise LimitExceeded(f"the platform's file is over {limit} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise MediaUnavailable(f"the media endpoint could not be reached "
                               f"({exc.__class__.__name__})") from None
    data = b"".join(chunks)
    for s in signals:
        algo = s.get("signal_type")
        exact = algo in ("md5", "sha1", "sha256") and (s.get("variant") or {}).get(
            "kind", "stored") == "stored"
        if exact and hashlib.new(str(algo), data).hexdigest() != str(
                s.get("value", "")).lower():
            raise MediaUnavailable(
                f"the platform's file does not match the submitted {algo}; not attached")
    return data
