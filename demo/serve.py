"""Serve a folder over HTTP on 127.0.0.1, in a daemon thread: the demo site for `make demo` and tests.

Plain files come from the standard library's static file handler. Git repositories under
``/git/NAME.git`` are also served over git's smart HTTP protocol by handing those requests to
``git http-backend`` (real git, as a CGI program), so ``git clone --depth 1`` works; the files of
a bare repository prepared with ``git update-server-info`` are still there for git's "dumb"
protocol too.

    server, base_url = serve_directory("out/site")
    ...
    server.stop()
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

GIT_SMART_PATH = re.compile(r"^/git/[A-Za-z0-9][A-Za-z0-9._-]*\.git/(info/refs|git-upload-pack)$")
"""Requests of git's smart protocol (read only: git-receive-pack is never served)."""
GIT_BACKEND_TIMEOUT_S = 60


class DemoRequestHandler(SimpleHTTPRequestHandler):
    """Static files, plus git smart HTTP for ``/git/*.git`` (clone and fetch only)."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map, ".xml": "application/xml", ".js": "text/javascript",
    }

    def do_GET(self) -> None:
        if self._is_git_smart_request():
            self._run_git_backend(body=b"")
        else:
            super().do_GET()

    def do_POST(self) -> None:
        if not self._is_git_smart_request():
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "Only git fetches may POST here")
            return
        self._run_git_backend(body=self._read_body())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and `make demo` print their own progress."""

    def _is_git_smart_request(self) -> bool:
        path = urlsplit(self.path).path
        if not GIT_SMART_PATH.match(path):
            return False
        # The dumb protocol asks for info/refs without ?service=: leave that to the static handler.
        return path.endswith("git-upload-pack") or "service=git-upload-pack" in urlsplit(self.path).query

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _run_git_backend(self, body: bytes) -> None:
        git = shutil.which("git")
        if git is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "git is not installed")
            return
        url = urlsplit(self.path)
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_PROJECT_ROOT": self.directory,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": self.request_version,
        }
        for header in ("Git-Protocol", "Content-Encoding"):
            if self.headers.get(header):
                environment["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        try:
            result = subprocess.run(
                [git, "http-backend"], input=body, env=environment, capture_output=True,
                timeout=GIT_BACKEND_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            self.send_error(HTTPStatus.GATEWAY_TIMEOUT, "git http-backend took too long")
            return
        head, separator, payload = result.stdout.partition(b"\r\n\r\n")
        if not separator:
            head, separator, payload = result.stdout.partition(b"\n\n")
        if not separator:
            self.send_error(HTTPStatus.BAD_GATEWAY, result.stderr.decode(errors="replace")[:200])
            return
        status = HTTPStatus.OK
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = HTTPStatus(int(value.strip().split()[0]))
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class StaticServer:
    """A running :class:`ThreadingHTTPServer` on a daemon thread; ``stop()`` shuts it down."""

    def __init__(self, directory: Path, host: str, port: int) -> None:
        handler = functools.partial(DemoRequestHandler, directory=str(directory))
        self.directory = directory
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        bound_host, bound_port = self.httpd.server_address[:2]
        shown_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.base_url = f"http://{shown_host}:{bound_port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name=f"demo-http-{bound_port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_directory(path: str | Path, host: str = "127.0.0.1", port: int = 0) -> tuple[StaticServer, str]:
    """Serve ``path`` at ``http://host:port`` (port 0 picks a free one). Returns (server, base URL)."""
    directory = Path(path).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"nothing to serve: {directory} is not a folder")
    server = StaticServer(directory, host, port)
    return server, server.base_url
