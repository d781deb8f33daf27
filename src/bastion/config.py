"""The one typed settings object.

Where each value comes from, highest first: keyword arguments (tests, the CLI's flags),
environment variables ``BASTION_<NAME>`` (upper case), the TOML file ``BASTION_CONFIG``
(default ``$BASTION_HOME/bastion.toml``), then the defaults below. Build it once at start-up
in an adapter (:func:`load_settings`) and pass it down; nothing reads the environment at
import time.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bastion.errors import ConfigurationError


class Limits(BaseModel):
    """Limits on untrusted media, each checked before the work it bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Bytes per file; larger files are refused before decoding (``not_scanned``).
    max_file_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Pixels per picture or frame, from the header before decoding (decompression bombs).
    max_pixels: int = Field(default=100_000_000, gt=0)
    #: Frames decoded per animation (GIF, WebP, APNG); later frames are not hashed and the
    #: result says so.
    max_animation_frames: int = Field(default=2_000, gt=0)
    #: Seconds of media time read per video.
    max_video_seconds: float = Field(default=4 * 3600.0, gt=0)
    #: CPU seconds one decode worker may spend on one file.
    decode_cpu_seconds: int = Field(default=60, gt=0)
    #: Wall-clock seconds one file may take in a decode worker before it is killed.
    decode_timeout_s: float = Field(default=120.0, gt=0)
    #: Address-space limit of a decode worker, bytes.
    decode_memory_bytes: int = Field(default=3 * 1024 * 1024 * 1024, gt=0)
    #: Characters (code points) of one text item matched against URL and keyword lists
    #: (a post, a message, a ``bastion scan-text`` line); longer ones are not scanned.
    max_text_chars: int = Field(default=1_000_000, gt=0)
    #: Characters of one URL (a link given with the text, a URL found in it).
    max_url_chars: int = Field(default=8192, gt=0)
    #: URLs taken from one text item (found in it plus given with it); more is refused.
    max_urls_per_text: int = Field(default=10_000, gt=0)


class ReviewSettings(BaseModel):
    """Review (issue 5): cases, sessions, reviewers' exposure, case media retention."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Minutes a reviewer's claim on a case lasts.
    claim_minutes: int = Field(default=30, gt=0)
    #: Hours a case may stay open before the queue marks it overdue (service-level timer).
    sla_hours: float = Field(default=24.0, gt=0)
    #: Hours a signed-in session lasts.
    session_hours: float = Field(default=8.0, gt=0)
    #: Failed sign-ins in a row that lock an account, and for how many minutes.
    max_failed_logins: int = Field(default=5, gt=0)
    lockout_minutes: int = Field(default=15, gt=0)
    #: Sign-in attempts per minute per client address (per process).
    login_attempts_per_minute: int = Field(default=10, gt=0)
    #: Prompt a break after this many reveals, or minutes in review, per session.
    break_after_reveals: int = Field(default=10, gt=0)
    break_after_minutes: int = Field(default=45, gt=0)
    #: Default preview blur radius (pixels of a 512-pixel preview).
    default_blur: int = Field(default=24, ge=4, le=64)
    #: Days media of cases decided not_violating or adult_legal is kept (and the submitted
    #: text of items that matched without opening a case).
    benign_media_days: int = Field(default=30, gt=0)
    #: Code points of an item's ``text`` and of its ``title`` kept (encrypted) for review
    #: when it opens a case or matches; longer ones are kept cut, and say so.
    kept_text_max_chars: int = Field(default=100_000, gt=0, le=1_000_000)
    #: Seconds a reveal URL stays valid (it is single-use too).
    reveal_seconds: int = Field(default=60, gt=0)
    #: Mark session cookies ``Secure`` (turn off only for plain-HTTP tests on localhost).
    secure_cookies: bool = True
    #: The platform's authenticated media endpoint, for cases of items it sent as hashes
    #: only: a URL with ``{content_id}`` (URL-encoded when filled in), e.g.
    #: ``https://media.example/internal/{content_id}``; fetched only when a reviewer asks.
    media_endpoint: str | None = None
    #: Bearer token sent to the media endpoint.
    media_endpoint_token: SecretStr | None = None
    #: Largest body read from the media endpoint, bytes; seconds one fetch may take.
    media_fetch_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    media_fetch_timeout_s: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    """Bastion's settings. Secrets are :class:`~pydantic.SecretStr` (masked in ``repr``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Data directory: SQLite database, index snapshots, evidence files.
    home: Path = Path("./bastion-data")
    #: SQLAlchemy URL; default SQLite file ``$home/bastion.db``.
    database_url: SecretStr | None = None
    limits: Limits = Limits()
    #: Isolated decode worker processes (bastion.signals.isolation); None = one per core;
    #: 0 decodes in-process, without isolation (tests and debugging only).
    decode_workers: int | None = Field(default=None, ge=0)
    #: Decode JPEGs at reduced size (libjpeg DCT scaling) before PDQ: several times faster,
    #: not bit-exact with the reference (benchmarks/bench_hash.py reports the drift).
    fast_decode: bool = False
    #: Days the content log keeps scanned items' signals for retro-hunt.
    content_log_days: int = Field(default=365, gt=0)
    #: Address the service is reached at (printed at start; links in the UI). Default:
    #: ``http://HOST:PORT`` of ``bastion serve``.
    public_url: str | None = None
    #: Largest upload the API accepts, bytes (POST /v1/content, /v1/hash, bank entries):
    #: refused with 413 from ``Content-Length`` or while streaming. Uploads are held in
    #: memory (never spooled to disk), so this bounds memory per request.
    api_max_upload_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: Requests per second allowed per API key (token bucket, per process); 0 = no limit.
    api_rate_per_s: float = Field(default=1000.0, ge=0)
    #: Burst size of the per-key token bucket (requests).
    api_rate_burst: int = Field(default=2000, gt=0)
    #: A bearer token that may read ``/metrics`` only (besides keys with scope ``admin``).
    metrics_token: SecretStr | None = None
    #: Fetch ``fetch_url`` submissions (POST /v1/content). Off by default: fetching URLs
    #: chosen by callers is a server-side request forgery risk.
    fetch_urls: bool = False
    #: Networks (CIDR, e.g. ``10.1.2.0/24``) that URL fetching may reach although they are
    #: not public addresses; empty by default (loopback, private, link-local, multicast and
    #: reserved addresses are refused).
    fetch_allow_networks: tuple[str, ...] = ()
    #: Largest body one URL fetch reads, bytes.
    fetch_max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    #: Seconds one URL fetch may take in all (redirects included).
    fetch_timeout_s: float = Field(default=15.0, gt=0)
    #: Analyse every submitted item with ``text`` as a classified ad (issue 8: contacts,
    #: trafficking indicators, score, ad network). Off: only items whose request carries ad
    #: fields (``title``, ``location``, ``posted_at``) are analysed; other uploads pay nothing.
    ads_analysis: bool = False
    #: The policy (the ``[policy]`` table; validated by :func:`bastion.policy.load_policy`).
    policy: dict[str, Any] = Field(default_factory=dict)
    #: Review settings (the ``[review]`` table).
    review: ReviewSettings = ReviewSettings()
    #: Master key of the encrypted case media (32 bytes as 64 hex or base64). Default: a
    #: key file, see ``master_key_file``.
    master_key: SecretStr | None = None
    #: Master key file (created with owner-only permissions on first start). Default:
    #: ``$XDG_CONFIG_HOME/bastion/master.key`` (``~/.config/...``), outside the data directory.
    master_key_file: Path | None = None
    #: The platform's webhook endpoints per action kind (``hide``, ``takedown``, ``restore``,
    #: ``suspend``, ``preserve``, ``report``, ``share``; ``*`` for every other kind):
    #: ``{kind: url}``. ``BASTION_WEBHOOK_URLS`` takes a JSON object.
    webhook_urls: dict[str, str] = Field(default_factory=dict)
    #: Key of the HMAC-SHA256 signature on webhook requests (``Bastion-Signature``).
    webhook_secret: SecretStr | None = None
    #: Seconds one webhook request may take.
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds an action is retried before it is dead-lettered (default 3 days).
    actions_max_age_s: float = Field(default=3 * 86400.0, gt=0)
    #: First retry delay of an action, seconds; doubled per attempt up to the maximum.
    actions_backoff_s: float = Field(default=2.0, gt=0)
    #: Longest delay between two attempts of an action (or report step), seconds.
    actions_backoff_max_s: float = Field(default=900.0, gt=0)
    #: CyberTipline environment: ``test`` (exttest.cybertip.org) or ``production``.
    cybertipline_environment: Literal["test", "production"] = "test"
    #: Base URL overriding the environment's (a fake server in tests, a proxy).
    cybertipline_url: str | None = None
    #: Reporting API credentials (basic auth); never logged, never in the data directory.
    cybertipline_username: SecretStr | None = None
    cybertipline_password: SecretStr | None = None
    #: NCMEC's schema file; when unset it is fetched from the API's ``GET /xsd`` once and
    #: cached as ``$home/cybertipline.xsd``.
    cybertipline_xsd: Path | None = None
    #: Seconds one Reporting API request may take (uploads included).
    cybertipline_timeout_s: float = Field(default=120.0, gt=0)
    #: ``reporter/reportingPerson`` of every report (required by the schema).
    cybertipline_reporter_first_name: str | None = None
    cybertipline_reporter_last_name: str | None = None
    cybertipline_reporter_email: str | None = None
    cybertipline_reporter_phone: str | None = None
    #: ``reporter/legalURL``: where law enforcement sends legal process.
    cybertipline_legal_url: str | None = None
    #: Hours after which a draft or approved report not yet submitted raises an alert.
    report_alert_hours: float = Field(default=24.0, gt=0)
    #: Days a reported item's bytes and metadata are preserved from the report (18 U.S.C.
    #: 2258A(h) as amended by the REPORT Act: one year); may only be raised.
    preservation_days: int = Field(default=365, ge=365)
    #: Approve report drafts without an admin when every case of the incident is a reviewer's
    #: ``csam`` decision on an exact (MD5/SHA-1/SHA-256) match in a bank with ``auto_action``
    #: (verified material).
    cybertipline_auto_approve_verified: bool = False

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _parse_webhook_urls(cls, value: Any) -> Any:
        """Accept a JSON object (environment variables)."""
        if isinstance(value, str):
            import json

            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError("webhook_urls must be a JSON object {kind: url}") from exc
        return value

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        """Accept a comma-separated string (environment variables)."""
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    def resolved_database_url(self) -> str:
        """The database URL to connect to (the SQLite default under :attr:`home`)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'bastion.db').resolve()}"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        key = f"BASTION_{name.upper()}"
        if key in environ:
            out[name] = environ[key]
        if name == "limits":
            lim: dict[str, Any] = {}
            for lname in Limits.model_fields:
                lkey = f"BASTION_{lname.upper()}"
                if lkey in environ:
                    lim[lname] = environ[lkey]
            if lim:
                out["limits"] = lim
        del field
    return out


def load_settings(
    environ: dict[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build :class:`Settings` from the TOML file, the environment and ``overrides``.

    Raises :class:`ConfigurationError` naming the file or variable at fault.
    """
    env = dict(os.environ if environ is None else environ)
    home = Path(overrides.get("home") or env.get("BASTION_HOME") or "./bastion-data")
    config_path = Path(env.get("BASTION_CONFIG") or home / "bastion.toml")
    data: dict[str, Any] = {}
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {config_path}: {exc}") from exc
    elif "BASTION_CONFIG" in env:
        raise ConfigurationError(f"BASTION_CONFIG names {config_path}, which does not exist")
    env_vals = _env_overrides(env)
    if "limits" in env_vals and isinstance(data.get("limits"), dict):
        env_vals["limits"] = {**data["limits"], **env_vals["limits"]}
    data.update(env_vals)
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["home"] = home
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid settings ({config_path} or BASTION_*): {exc}") from exc
