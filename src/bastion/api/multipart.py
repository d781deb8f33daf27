"""Streaming ``multipart/form-data`` parsing that never spools an upload to disk.

Starlette's ``request.form()`` writes file parts larger than 1 MB to a temporary file:
the plaintext of an upload (possibly abuse material) would sit in ``/tmp``. Here the body
is fed chunk by chunk to python-multipart's streaming :class:`MultipartParser`; the one
file part (field ``file``) is collected in memory up to ``max_file_bytes`` and the request
is refused with 413 the moment it goes past (never after buffering everything); text
fields are bounded too.

Errors: :class:`~bastion.api.problems.BadRequest` (no boundary, broken framing, text
that is not UTF-8), :class:`~bastion.api.problems.PayloadTooLarge`,
:class:`~bastion.api.problems.FieldError` (a text field too long, too many fields, more
than one file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from bastion.api.problems import BadRequest, FieldError, PayloadTooLarge

#: Bytes of one text field.
MAX_FIELD_BYTES = 256 * 1024
#: Parts in one request.
MAX_PARTS = 250
#: The one field that carries a file.
FILE_FIELD = "file"


@dataclass(slots=True)
class FormData:
    """A parsed form: text ``fields`` (name -> values in order) and the ``file`` bytes
    (None when no ``file`` part was sent) with its client-given ``filename`` (a label only)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    file: bytes | None = None
    filename: str | None = None

    def one(self, name: str) -> str | None:
        """The single value of ``name`` (None if absent). Raises FieldError if repeated."""
        values = self.fields.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise FieldError(f"{name} given {len(values)} times", name)
        return values[0]


class _State:
    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.form = FormData()
        self.parts = 0
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.name: str | None = None
        self.is_file = False
        self.buf = bytearray()
        self.file_buf: bytearray | None = None
        self.done = False

    # callbacks ------------------------------------------------------------------------

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise FieldError(f"more than {MAX_PARTS} form fields", "form")
        self.headers = {}
        self.name = None
        self.is_file = False
        self.buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).decode("latin-1").strip().lower()] = bytes(
            self.header_value
        )
        self.header_field = bytearray()
        self.header_value = bytearray()

    def on_headers_finished(self) -> None:
        disp = self.headers.get("content-disposition")
        if disp is None:
            raise BadRequest("a form part has no Content-Disposition header")
        kind, opts = parse_options_header(disp)
        if kind.lower() != b"form-data" or b"name" not in opts:
            raise BadRequest("a form part is not form-data with a name")
        try:
            self.name = opts[b"name"].decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("a form field name is not UTF-8") from None
        self.is_file = self.name == FILE_FIELD
        if self.is_file:
            if self.form.file is not None or self.file_buf is not None:
                raise FieldError("exactly one file per request", FILE_FIELD)
            self.file_buf = bytearray()
            fn = opts.get(b"filename")
            self.form.filename = None if fn is None else fn.decode("utf-8", "replace")[:255]

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self.is_file:
            assert self.file_buf is not None
            if len(self.file_buf) + n > self.max_file_bytes:
                raise PayloadTooLarge(
                    f"file is over the upload limit of {self.max_file_bytes} bytes"
                )
            self.file_buf += data[start:end]
            return
        if len(self.buf) + n > MAX_FIELD_BYTES:
            raise FieldError(f"field longer than {MAX_FIELD_BYTES} bytes", self.name or "form")
        self.buf += data[start:end]

    def on_part_end(self) -> None:
        if self.is_file:
            assert self.file_buf is not None
            self.form.file = bytes(self.file_buf)
            self.file_buf = None
            return
        assert self.name is not None
        try:
            text = self.buf.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"form field {self.name!r} is not UTF-8 text") from None
        self.form.fields.setdefault(self.name, []).append(text)

    def on_end(self) -> None:
        self.done = True


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type. Raises BadRequest."""
    kind, opts = parse_options_header(content_type)
    if kind.lower() != b"multipart/form-data":
        raise BadRequest("expected multipart/form-data")
    boundary = opts.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise BadRequest("multipart/form-data without a valid boundary")
    return boundary


async def read_form(
    chunks: AsyncIterator[bytes], content_type: str, *, max_file_bytes: int
) -> FormData:
    """Parse a multipart body streamed as ``chunks`` (see the module docstring)."""
    state = _State(max_file_bytes)
    parser = MultipartParser(
        boundary_of(content_type),
        callbacks={
            "on_part_begin": state.on_part_begin,
            "on_part_data": state.on_part_data,
            "on_part_end": state.on_part_end,
            "on_header_field": state.on_header_field,
            "on_header_value": state.on_header_value,
            "on_header_end": state.on_header_end,
            "on_headers_finished": state.on_headers_finished,
            "on_end": state.on_end,
        },
    )
    try:
        async for chunk in chunks:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if not state.done:
        raise BadRequest("multipart body ended before its closing boundary")
    return state.form
