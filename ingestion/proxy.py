"""The forward proxy Chromium sends all its traffic through, so the browser never resolves a host itself.

Chromium started with ``--proxy-server`` hands every connection (documents, sub-resources, WebSockets,
service workers, popups, preconnects) to this proxy. For each one the proxy asks the URL guard, which
resolves the host once and checks every address, and then connects to one of exactly those addresses: the
address that was checked is the address that is used (no DNS rebinding between check and connect), and a
refused host gets a 403 without any connection being made.

Plain-http requests are forwarded one per connection (``Connection: close`` both ways), so every request
is checked on its own; https and WebSockets arrive as ``CONNECT host:port`` and are tunnelled after the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from ingestion.types import UrlRefused
from ingestion.urlguard import CheckedUrl, UrlGuard

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                         "proxy-authenticate", "te", "trailer", "upgrade"})


class GuardedProxy:
    """An HTTP proxy on 127.0.0.1 that connects only to addresses the guard approved; ``refusals`` says
    what it stopped."""

    def __init__(self, guard: UrlGuard, *, timeout_s: float) -> None:
        self.guard = guard
        self.timeout_s = timeout_s
        self.refusals: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Start listening; returns the proxy's URL for ``--proxy-server``."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout_s)
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method.upper() == "CONNECT":
            url = f"https://{target}/"
        elif target.lower().startswith("http://"):
            url = target
        else:
            await _answer(writer, 400, "the proxy takes absolute http:// URLs and CONNECT only")
            return
        try:
            checked = await self.guard.resolve_async(url)
        except UrlRefused as exc:
            self.refusals.append(str(exc))
            await _answer(writer, 403, f"refused by the URL guard: {exc}")
            return
        try:
            upstream_reader, upstream_writer = await self._connect(checked)
        except OSError as exc:
            await _answer(writer, 502, f"cannot connect to {checked.host}: {exc}")
            return
        try:
            if method.upper() == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _pipe_both(reader, writer, upstream_reader, upstream_writer)
            else:
                await self._forward(method, target, version, header_lines, reader, writer,
                                    upstream_reader, upstream_writer)
        finally:
            upstream_writer.close()

    async def _connect(self, checked: CheckedUrl) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to one of the approved addresses (by name only for an allowed host that did not resolve)."""
        candidates = [str(address) for address in checked.addresses] or [checked.host]
        error: OSError | None = None
        for address in candidates:
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, checked.port), self.timeout_s)
            except (OSError, asyncio.TimeoutError) as exc:
                error = exc if isinstance(exc, OSError) else OSError(f"timed out after {self.timeout_s:g} s")
        assert error is not None
        raise error

    async def _forward(self, method: str, target: str, version: str, header_lines: list[str],
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       upstream_reader: asyncio.StreamReader, upstream_writer: asyncio.StreamWriter) -> None:
        """One plain-http request in origin form, its body (by Content-Length only), then the answer."""
        parts = urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [line for line in header_lines if line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        names = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in headers if ":" in line}
        if "chunked" in names.get("transfer-encoding", "").lower():
            await _answer(writer, 411, "chunked request bodies are not forwarded")
            return
        length = int(names.get("content-length", "0") or 0)
        upstream_writer.write(f"{method} {path} {version}\r\n".encode("latin-1")
                              + "".join(f"{line}\r\n" for line in [*headers, "Connection: close"]).encode("latin-1")
                              + b"\r\n")
        if length:
            upstream_writer.write(await asyncio.wait_for(reader.readexactly(length), self.timeout_s))
        await upstream_writer.drain()
        response_head = await asyncio.wait_for(upstream_reader.readuntil(b"\r\n\r\n"), self.timeout_s)
        status_line, *response_lines = response_head[:-4].decode("latin-1").split("\r\n")
        kept = [line for line in response_lines if line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        writer.write("".join(f"{line}\r\n" for line in [status_line, *kept, "Connection: close"]).encode("latin-1")
                     + b"\r\n")
        await _copy(upstream_reader, writer, self.timeout_s)


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = message.encode("utf-8", "replace")
    reason = {400: "Bad Request", 403: "Forbidden", 411: "Length Required", 502: "Bad Gateway"}[status]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1") + body)
    await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout_s: float | None = None) -> None:
    while True:
        chunk = await asyncio.wait_for(reader.read(64 * 1024), idle_timeout_s)
        if not chunk:
            break
        writer.write(chunk)
        await writer.drain()


async def _pipe_both(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     upstream_reader: asyncio.StreamReader, upstream_writer: asyncio.StreamWriter) -> None:
    """Tunnel bytes both ways; an end-of-stream from one side is passed on, and the tunnel lasts until both
    sides have finished (or the proxy stops)."""

    async def one_way(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await _copy(reader, writer)
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()

    tasks = [asyncio.create_task(one_way(client_reader, upstream_writer)),
             asyncio.create_task(one_way(upstream_reader, client_writer))]
    try:
        await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
