"""Index snapshot files: uncompressed ``.npz`` (a zip of ``.npy`` arrays), never pickle.

:func:`write_npz` writes a zip that ``numpy.load`` reads as usual, with each member's data
aligned to 64 bytes in the file (a padding extra field, id 0xD935 as Android's zipalign uses),
into a temporary file that is then renamed over the target: a reader never sees half a snapshot
and a mapped snapshot is never changed under its reader.

:func:`read_npz` does not copy through ``numpy.load``, which reads each array through the zip
reader in small chunks into freshly faulted memory (15 s for a 1 GB snapshot on the development
machine). It maps the file read-only and returns arrays that are views of the mapping (zero
copy; the page cache holds them), after checking each member's CRC-32 against the zip directory
(a flipped bit is an error, never a silently wrong index) and parsing its ``.npy`` header;
object arrays are refused. Callers copy what they will modify.

Format references: PKWARE APPNOTE.TXT (local file header: 30 bytes, then name and extra field;
method 0 = stored; ZIP64 extra field) and numpy's ``.npy`` format (``numpy.lib.format``).
"""

from __future__ import annotations

import io
import mmap
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
#: Bytes per CRC-32 step.
_CRC_CHUNK = 64 << 20
#: Alignment of each member's data in the file (numpy's own ``.npy`` header alignment).
_ALIGN = 64
_PAD_ID = 0xD935
_ZIP64_EXTRA = 20  # the ZIP64 extra field zipfile adds to a local header (force_zip64)


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` (name -> array) to ``path`` as an uncompressed ``.npz`` with aligned
    members, atomically (temporary file in the same folder, then rename). Object arrays are
    refused (ValueError). Raises OSError if the folder is not writable."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for name, value in arrays.items():
                arr = np.asarray(value)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                base = fh.tell() + 30 + len(info.filename.encode()) + 4 + _ZIP64_EXTRA
                pad = -base % _ALIGN
                info.extra = struct.pack("<HH", _PAD_ID, pad) + bytes(pad)
                with zf.open(info, "w", force_zip64=True) as out:
                    if arr.dtype.hasobject:
                        raise ValueError(f"{name}: object arrays are not written")
                    arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
                    header = np.lib.format.header_data_from_array_1_0(arr)
                    np.lib.format.write_array_header_2_0(out, header)
                    # One write of the array's own buffer (numpy's writer copies in chunks).
                    out.write(arr.reshape(-1).view(np.uint8).data if arr.size else b"")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_npz(path: str | os.PathLike[str], what: str) -> dict[str, npt.NDArray[Any]]:
    """Every array of an uncompressed ``.npz`` by name (without ``.npy``), as read-only views
    of the file mapped into memory (members not aligned in the file are copied).

    ``what`` names the file's kind in error messages. Raises :class:`InvalidInput` for a file
    that is not such an archive, a compressed or truncated member, a CRC mismatch, a bad
    ``.npy`` header or an object array; OSError if the file cannot be read. The file must not
    be modified in place while the arrays are in use (:func:`write_npz` never does).
    """
    out: dict[str, npt.NDArray[Any]] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
            whole = (
                np.frombuffer(mapped, dtype=np.uint8)
                if mapped is not None
                else np.zeros(0, np.uint8)
            )
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise InvalidInput(f"{what}: unexpected member {info.filename!r}")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise InvalidInput(f"{what}: compressed members are not supported")
                at = info.header_offset
                head = whole[at : at + _LOCAL_HEADER.size].tobytes()
                sig, name_len, extra_len = _LOCAL_HEADER.unpack(head)
                if sig != b"PK\x03\x04":
                    raise InvalidInput(f"{what}: damaged zip header")
                lo = at + _LOCAL_HEADER.size + name_len + extra_len
                member = whole[lo : lo + info.file_size]
                if member.size != info.file_size:
                    raise InvalidInput(f"{what}: {info.filename} is truncated")
                crc = 0
                for c in range(0, info.file_size, _CRC_CHUNK):
                    crc = zlib.crc32(member[c : c + _CRC_CHUNK].data, crc)
                if crc != info.CRC:
                    raise InvalidInput(f"{what}: {info.filename} fails its CRC check")
                out[info.filename[:-4]] = _parse_npy(member, what, info.filename)
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
    if data.ctypes.data % max(dtype.alignment, 1):
        data = data.copy()  # a member written without alignment (e.g. by numpy.savez)
    arr = data.view(dtype)
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)
