"""The master key that wraps every evidence item's data key.

Where it comes from, first that applies:

1. ``BASTION_MASTER_KEY`` (setting ``master_key``): 32 bytes as 64 hex characters or
   base64;
2. the key file ``master_key_file`` (default ``$XDG_CONFIG_HOME/bastion/master.key``, i.e.
   ``~/.config/bastion/master.key``: outside the data directory, so a copy of the data
   directory or its backups alone cannot decrypt anything). Created on first use with
   64 random hex characters and owner-only permissions (0600, directory 0700); an existing
   file readable by group or others is refused.

A key is named by its id: the first 16 hex of the SHA-256 of the key. Rotation:
:func:`bastion.evidence.vault.rotate_master_key` re-wraps every data key.
Raises :class:`~bastion.errors.ConfigurationError` naming the variable or file at fault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from bastion.config import Settings
from bastion.errors import ConfigurationError

#: Bytes of a master key (AES-256).
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A 256-bit master key (``repr`` shows only its id)."""

    key: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """First 16 hex of the key's SHA-256."""
        return hashlib.sha256(self.key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random key."""
        return cls(secrets.token_bytes(KEY_BYTES))


def parse_key(text: str, what: str) -> MasterKey:
    """A key from 64 hex characters or base64 of 32 bytes; raises ConfigurationError."""
    t = text.strip()
    raw: bytes | None = None
    if len(t) == 2 * KEY_BYTES:
        try:
            raw = bytes.fromhex(t)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(t + "=" * (-len(t) % 4), altchars=b"-_"
                                   if ("-" in t or "_" in t) else None, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise ConfigurationError(f"{what}: a master key is 32 bytes as 64 hex characters or "
                                 "base64")
    return MasterKey(raw)


def default_key_file() -> Path:
    """``$XDG_CONFIG_HOME/bastion/master.key`` (``~/.config/bastion/master.key``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bastion" / "master.key"


def load_master_key(settings: Settings, *, create: bool = True) -> MasterKey:
    """The master key named by ``settings`` (see the module docstring); creates the key
    file when missing and ``create`` is true."""
    if settings.master_key is not None:
        return parse_key(settings.master_key.get_secret_value(), "BASTION_MASTER_KEY")
    path = settings.master_key_file or default_key_file()
    if not path.exists():
        if not create:
            raise ConfigurationError(f"no master key: set BASTION_MASTER_KEY or create {path}")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = MasterKey.generate()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: read theirs
            return load_master_key(settings, create=False)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the master key file {path}: "
                                     f"{exc.strerror}") from None
        with os.fdopen(fd, "w") as f:
            f.write(key.key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return key
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"the master key file {path} is readable by others "
                                 f"(mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the master key file {path}: {exc}") from None
    return parse_key(text, str(path))
