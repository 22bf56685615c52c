"""GitHub collection against real git repositories served on 127.0.0.1.

Two servers: a "smart" HTTP server (``git http-backend`` behind a small CGI bridge, the protocol GitHub
speaks, so shallow and partial clones happen for real) and a "dumb" one (the bare repo as static files
through ``http.server``), which cannot do shallow clones and exercises the full-clone retry.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingestion.github import collect_github, resolve_targets
from ingestion.types import Problem
from ingestion.urlguard import UrlGuard
from twin.domain import Kind, Platform, RawDocument
from twin.settings import Settings

MAX_FILE_BYTES = 4_000


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(cwd)}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def git_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A served folder holding ``repo.git`` (bare, filters allowed) built from a real commit."""
    root = tmp_path_factory.mktemp("git-served")
    work = root.parent / (root.name + "-work")
    work.mkdir()
    files = {
        "README.md": "# Tiny tool\n\nA tiny tool that does one thing well.\n",
        "docs/guide.md": "# Guide\n\n## Install\n\nRun `make install`.\n",
        "src/app.py": "import os\n\n\ndef main() -> None:\n    print(os.getcwd())\n",
        "lib.js": "export function add(a, b) {\n  return a + b;\n}\n",
        "node_modules/left-pad/index.js": "module.exports = 1;\n",
        ".github/workflows/ci.yml": "on: push\n",
        "data/huge.py": "x = 1\n" * 2_000,  # 12 kB: over MAX_FILE_BYTES
        "notes.txt": "binary\0data\n",
        "logo.png": "\x89PNG not really\n",
    }
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (work / "link.md").symlink_to("/etc/passwd")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "-m", "init", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=root)
    _git("config", "uploadpack.allowFilter", "true", cwd=root / "repo.git")
    _git("update-server-info", cwd=root / "repo.git")
    # A stand-in for https://api.github.com/users/<owner>/repos (served as a static file).
    listing = [
        {"name": "repo", "html_url": "REPLACED", "clone_url": "REPLACED", "fork": False, "size": 4},
        {"name": "forked", "html_url": "https://github.com/ada/forked", "fork": True, "size": 1},
        {"name": "huge", "html_url": "https://github.com/ada/huge", "clone_url": "https://github.com/ada/huge.git",
         "fork": False, "size": 10_000_000},
    ]
    (root / "users" / "ada").mkdir(parents=True)
    (root / "users" / "ada" / "repos").write_text(json.dumps(listing))
    return root


class _SmartGitHandler(BaseHTTPRequestHandler):
    """Bridges HTTP to ``git http-backend`` (CGI), as a real git host does."""

    root: Path

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def _backend(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ["PATH"], "HOME": str(self.root), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
            "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = output.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = output.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _serve(handler: type) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def smart_port(git_root: Path) -> Iterator[int]:
    handler = type("Handler", (_SmartGitHandler,), {"root": git_root})
    yield from _serve(handler)


@pytest.fixture(scope="module")
def dumb_port(git_root: Path) -> Iterator[int]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

    yield from _serve(partial(Quiet, directory=str(git_root)))  # type: ignore[arg-type]


def _settings(settings: Settings, **crawl: object) -> Settings:
    return settings.model_copy(
        update={"crawl": settings.crawl.model_copy(update={"github_max_file_bytes": MAX_FILE_BYTES, **crawl})}
    )


async def _collect(url: str, settings: Settings, allowed: list[str] | None = None) -> list:
    guard = UrlGuard(settings.allowed_hosts if allowed is None else allowed)
    return [item async for item in collect_github(url, settings=settings, guard=guard)]


def _check_repo_documents(items: list, base: str) -> None:
    assert not [item for item in items if isinstance(item, Problem)], items
    docs = {item.metadata["path"]: item for item in items if isinstance(item, RawDocument)}
    assert set(docs) == {"README.md", "docs/guide.md", "src/app.py", "lib.js"}
    readme = docs["README.md"]
    assert readme.url == f"{base}/blob/HEAD/README.md"
    assert readme.title == "repo/README.md" and readme.kind is Kind.article
    assert readme.platform is Platform.github
    assert readme.text.startswith("# Tiny tool")
    assert docs["docs/guide.md"].kind is Kind.article
    assert docs["src/app.py"].kind is Kind.code and docs["src/app.py"].metadata["language"] == "python"
    assert docs["lib.js"].metadata["language"] == "javascript"
    assert [item.metadata["path"] for item in items][:2] == ["README.md", "docs/guide.md"]


async def test_smart_http_shallow_partial_clone(settings: Settings, smart_port: int) -> None:
    items = await _collect(f"http://127.0.0.1:{smart_port}/repo.git", _settings(settings))
    _check_repo_documents(items, f"http://127.0.0.1:{smart_port}/repo")


async def test_dumb_http_falls_back_to_full_clone(settings: Settings, dumb_port: int) -> None:
    items = await _collect(f"http://127.0.0.1:{dumb_port}/repo.git", _settings(settings))
    _check_repo_documents(items, f"http://127.0.0.1:{dumb_port}/repo")


async def test_file_cap_keeps_readme_first(settings: Settings, smart_port: int) -> None:
    items = await _collect(f"http://127.0.0.1:{smart_port}/repo.git", _settings(settings, github_max_files=1))
    assert [item.metadata["path"] for item in items] == ["README.md"]


async def test_repo_size_cap_stops_with_a_problem(settings: Settings, dumb_port: int) -> None:
    items = await _collect(f"http://127.0.0.1:{dumb_port}/repo.git", _settings(settings, github_max_repo_bytes=2_000))
    # The cap stops the clone while it grows, or (when the clone finishes first) the reading of its files:
    # either way collection ends with one size problem, and what came before stays under the cap.
    *documents, last = items
    assert isinstance(last, Problem) and not last.refused and "bytes" in last.reason
    assert not any(isinstance(item, Problem) for item in documents)
    assert sum(len(d.text.encode()) for d in documents) <= 2_000


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "ssh://git@github.com/ada/repo.git",
        "git://github.com/ada/repo.git",
        "git@github.com:ada/repo.git",
        "ext::sh -c touch% /tmp/pwned",
        "http://github.com/ada/repo.git",
    ],
)
async def test_other_schemes_are_refused(settings: Settings, url: str) -> None:
    items = await _collect(url, _settings(settings))
    assert len(items) == 1 and isinstance(items[0], Problem) and items[0].refused, items


async def test_private_address_refused_without_allow_list(settings: Settings, smart_port: int) -> None:
    items = await _collect(f"http://127.0.0.1:{smart_port}/repo.git", _settings(settings), allowed=[])
    assert len(items) == 1 and items[0].refused
    items = await _collect("https://127.0.0.1/repo.git", _settings(settings), allowed=[])
    assert len(items) == 1 and items[0].refused and "not a public address" in items[0].reason


async def test_owner_listing_skips_forks_and_caps(settings: Settings, git_root: Path, dumb_port: int) -> None:
    listing_path = git_root / "users" / "ada" / "repos"
    listing = json.loads(listing_path.read_text())
    listing[0]["html_url"] = f"http://127.0.0.1:{dumb_port}/repo"
    listing[0]["clone_url"] = f"http://127.0.0.1:{dumb_port}/repo.git"
    listing_path.write_text(json.dumps(listing))
    guard = UrlGuard(["127.0.0.1"])
    api = f"http://127.0.0.1:{dumb_port}"
    targets = await resolve_targets("https://github.com/ada", settings=settings, guard=guard, api_base=api)
    assert [t.name for t in targets] == ["repo", "huge"]
    capped = settings.model_copy(update={"crawl": settings.crawl.model_copy(update={"github_max_repos": 1})})
    assert len(await resolve_targets("https://github.com/ada", settings=capped, guard=guard, api_base=api)) == 1
    # the API's size says "too big" before anything is cloned
    from ingestion.github import collect_repo

    items = [item async for item in collect_repo(targets[1], settings=settings, guard=guard)]
    assert len(items) == 1 and "over the" in items[0].reason
    repo = await resolve_targets("https://github.com/ada/tool/tree/main/src", settings=settings, guard=guard)
    assert repo[0].clone_url == "https://github.com/ada/tool.git" and repo[0].web_url == "https://github.com/ada/tool"


async def test_smart_clone_is_shallow_and_leaves_big_blobs_on_the_server(
    settings: Settings, smart_port: int, tmp_path: Path
) -> None:
    from ingestion.github import _git_output, clone

    dest = tmp_path / "clone"
    await clone(f"http://127.0.0.1:{smart_port}/repo.git", dest, settings=_settings(settings),
                guard=UrlGuard(["127.0.0.1"]), home=tmp_path)
    assert (dest / ".git" / "shallow").exists()
    assert not (dest / "README.md").exists()  # no checkout: files are read from the object store
    missing = (await _git_output(dest, "rev-list", "--objects", "--missing=print", "HEAD")).decode()
    assert len([line for line in missing.splitlines() if line.startswith("?")]) == 1  # data/huge.py
