"""Export uploads streamed to disk: the multipart body is parsed as it arrives and the file part written in
blocks to the uploads folder, never held whole in memory. A real X archive with its media is gigabytes.

Past ``serve.max_upload_bytes`` the request is refused with 413 and the partial file removed. The route
handlers that take uploads set ``request_max_body_size=None`` (the app-wide cap is for JSON and form
bodies, which Litestar reads whole) and call `receive_upload`, which enforces this cap instead.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_415_UNSUPPORTED_MEDIA_TYPE
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

UPLOAD_FIELD = "data"
"""The form part that carries the file (the page's form, the CLI and `curl -F data=@export.zip`)."""
WRITE_BLOCK = 1 << 20
"""Bytes gathered before one write to disk (in a worker thread: the event loop never waits on the disk)."""
MAX_OTHER_PART_BYTES = 64 * 1024
"""Parts other than the file (a CSRF token, say) are small; they are read and dropped."""


@dataclass(frozen=True)
class ReceivedUpload:
    path: Path
    """The file in the uploads folder; whoever takes it removes it (the import job does)."""
    filename: str
    """The name the client gave, without any folder."""
    size: int


@dataclass
class UploadOperation(Operation):
    """OpenAPI for a handler that reads its multipart body itself: a form with the file in ``data``."""

    def __post_init__(self) -> None:
        self.request_body = self.request_body or RequestBody(
            required=True,
            content={"multipart/form-data": OpenAPIMediaType(schema=Schema(
                type=OpenAPIType.OBJECT, required=[UPLOAD_FIELD],
                properties={UPLOAD_FIELD: Schema(type=OpenAPIType.STRING, format="binary")},  # type: ignore[arg-type]
            ))},
        )


def too_large(cap: int) -> HTTPException:
    return HTTPException(
        status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        detail=f"The upload is larger than the {cap:,} bytes allowed (TWIN_SERVE__MAX_UPLOAD_BYTES).",
    )


async def receive_upload(request: Request[Any, Any, Any], folder: Path, cap: int) -> ReceivedUpload:
    """Stream the ``data`` part of a multipart request into a new file under ``folder``."""
    content_type, options = request.content_type
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise HTTPException(status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            detail=f"Send multipart/form-data with the file in `{UPLOAD_FIELD}`, "
                                   f"not {content_type or 'no type'}.")
    # The body carries the form's framing besides the file: allow a little for it.
    if (request.content_length or 0) > cap + 64 * 1024:
        raise too_large(cap)
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", suffix=".part", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        if request.is_connected:
            filename, size = await _write_file_part(request, boundary.encode(), handle, cap)
        else:  # a middleware read the form already (the CSRF check, for a token sent as a form field)
            filename, size = await _copy_parsed_file(request, handle, cap)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    handle.close()
    return ReceivedUpload(path=path, filename=filename, size=size)


async def _write_file_part(request: Request[Any, Any, Any], boundary: bytes, handle: Any, cap: int) -> tuple[str, int]:
    filename: str | None = None
    size = 0
    pending = bytearray()
    in_file = False
    other = 0

    async def flush() -> None:
        if pending:
            block = bytes(pending)
            pending.clear()
            await asyncio.to_thread(handle.write, block)

    try:
        with PushMultipartParser(boundary, max_segment_count=16) as parser:
            async for chunk in request.stream():
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        in_file = part.name == UPLOAD_FIELD and part.filename is not None and filename is None
                        if in_file:
                            filename = Path(part.filename.replace("\\", "/")).name or "export.zip"
                    elif part and in_file:
                        size += len(part)
                        if size > cap:
                            raise too_large(cap)
                        pending.extend(part)
                        if len(pending) >= WRITE_BLOCK:
                            await flush()
                    elif part:
                        other += len(part)
                        if other > MAX_OTHER_PART_BYTES:
                            raise ClientException(f"Only the file (in `{UPLOAD_FIELD}`) may be large in this form.")
                    else:
                        in_file = False
                if parser.closed:
                    break
            await flush()
    except ParserLimitReached as exc:
        raise ClientException(f"The form has too many parts: send the file in `{UPLOAD_FIELD}`.") from exc
    except ParserError as exc:
        raise ClientException(f"The upload is not a valid multipart form ({exc}).") from exc
    if filename is None:
        raise ClientException(f"The form has no file in `{UPLOAD_FIELD}`.")
    return filename, size


async def _copy_parsed_file(request: Request[Any, Any, Any], handle: Any, cap: int) -> tuple[str, int]:
    """The file part of a form Litestar parsed already (into a temporary file that spills to disk)."""
    upload = (await request.form()).get(UPLOAD_FIELD)
    if not isinstance(upload, UploadFile):
        raise ClientException(f"The form has no file in `{UPLOAD_FIELD}`.")

    def copy() -> int:
        size = 0
        upload.file.seek(0)
        while block := upload.file.read(WRITE_BLOCK):
            size += len(block)
            if size > cap:
                raise too_large(cap)
            handle.write(block)
        return size

    size = await asyncio.to_thread(copy)
    return Path(upload.filename.replace("\\", "/")).name or "export.zip", size
