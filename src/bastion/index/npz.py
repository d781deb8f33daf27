"""Index snapshot files: uncompressed ``.npz`` (a zip of ``.npy`` arrays), never pickle.

Writing uses ``numpy.savez`` into a temporary file that is then renamed over the target, so a
reader never sees half a snapshot. Reading does not go through ``numpy.load``: that copies each
array through the zip reader in small chunks (about 15 s for a 1 GB snapshot on the development
machine). :func:`read_npz` reads each stored member with one ``readinto`` into its final
buffer, checks its CRC-32 against the zip directory (a flipped bit is an error, never a silently
wrong index) and parses the ``.npy`` header; object arrays are refused.

Format references: PKWARE APPNOTE.TXT (zip local file header: 30 bytes, then name and extra
field; method 0 = stored) and numpy's ``.npy`` format (``numpy.lib.format``).
"""

from __future__ import annotations

import io
import os
import struct
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
#: Largest ``.npy`` header read (numpy pads headers to 64 bytes; they are a few hundred long).
_MAX_HEADER = 1 << 16
#: Bytes per CRC-32 step (bounds the time the GIL is held by one call).
_CRC_CHUNK = 64 << 20


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically (temporary file in
    the same folder, then rename). Raises OSError if the folder is not writable."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_npz(path: str | os.PathLike[str], what: str) -> dict[str, npt.NDArray[Any]]:
    """Every array of an uncompressed ``.npz`` by name (without the ``.npy`` suffix).

    ``what`` names the file's kind in error messages. Raises :class:`InvalidInput` for a file
    that is not such an archive, a compressed or truncated member, a CRC mismatch, a bad
    ``.npy`` header or an object array; OSError if the file cannot be read.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise InvalidInput(f"{what}: unexpected member {info.filename!r}")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise InvalidInput(f"{what}: compressed members are not supported")
                fh.seek(info.header_offset)
                sig, name_len, extra_len = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
                if sig != b"PK\x03\x04":
                    raise InvalidInput(f"{what}: damaged zip header")
                fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
                buf = np.empty(info.file_size, dtype=np.uint8)
                if fh.readinto(buf.data) != info.file_size:
                    raise InvalidInput(f"{what}: {info.filename} is truncated")
                crc = 0
                for lo in range(0, info.file_size, _CRC_CHUNK):
                    crc = zlib.crc32(buf[lo : lo + _CRC_CHUNK].data, crc)
                if crc != info.CRC:
                    raise InvalidInput(f"{what}: {info.filename} fails its CRC check")
                out[info.filename[:-4]] = _parse_npy(buf, what, info.filename)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{what}: not a zip archive ({exc})") from None
    except struct.error:
        raise InvalidInput(f"{what}: damaged zip header") from None
    return out


def _parse_npy(buf: npt.NDArray[np.uint8], what: str, name: str) -> npt.NDArray[Any]:
    head = io.BytesIO(buf[:_MAX_HEADER].tobytes())
    try:
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
    except (ValueError, OSError, SyntaxError) as exc:
        raise InvalidInput(f"{what}: {name} has a bad .npy header ({exc})") from None
    if dtype.hasobject:
        raise InvalidInput(f"{what}: {name} holds objects (pickle), refused")
    count = int(np.prod(shape, dtype=np.int64))
    start = head.tell()
    if buf.size - start != count * dtype.itemsize:
        raise InvalidInput(f"{what}: {name} has the wrong size for its header")
    data = buf[start:]
    if dtype.itemsize > 1 and start % dtype.itemsize:
        data = data.copy()  # align (numpy pads headers to 64 bytes, so normally not needed)
    arr = data.view(dtype)
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)
