"""GitHub (and any https git remote): a user's or org's public repos, or one repo, as documents.

A repo is cloned shallow over https only (``git clone --depth 1 --single-branch --no-tags --no-checkout
--filter=blob:limit=<github_max_file_bytes>``), so blobs larger than a file may be never leave the server
where it supports partial clone (GitHub does); the files are then read straight from the object store,
without a checkout, so no symlink or lazy fetch is ever followed. Safety:

- the URL passes the URL guard first, and git is pinned to the address the guard approved
  (``http.curloptResolve``), with redirects off, so DNS cannot swap in a private address afterwards; the
  GitHub API is read over the guard's session (:func:`~ingestion.urlguard.guarded_session`), redirects
  followed hop by hop by :func:`~ingestion.urlguard.follow_redirects`;
- only the https transport is allowed (``protocol.allow=never``), plain http only for hosts on the
  allow-list (the tests' 127.0.0.1 server), never ssh, git or file;
- no user or system git config is read, no credential prompt can appear, and the clone is killed when it
  runs past its time or when its folder grows past ``github_max_repo_bytes``.

A "dumb" HTTP remote (a bare repo served as static files) cannot do shallow clones: git says so and the
clone is retried in full, under the same size and time caps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pydantic import BaseModel

from ingestion.types import CollectedItem, FetchFailed, Problem, UrlRefused
from ingestion.urlguard import (
    REDIRECT_STATUSES, CheckedUrl, TooManyRedirects, UrlGuard, follow_redirects, guarded_session, read_capped,
)
from twin.domain import Kind, Platform, RawDocument
from twin.settings import Settings

GITHUB_API = "https://api.github.com"
GITHUB_HOSTS = {"github.com", "www.github.com"}
VENDORED_DIRS = frozenset(
    {
        "node_modules", "vendor", "vendored", "third_party", "thirdparty", "dist", "build", "target", "out",
        "__pycache__", ".venv", "venv", "env", "site-packages", "bower_components", "_build", "coverage",
    }
)
ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".mdx"})
README_RE = re.compile(r"^readme(\.[\w]+)?$", re.IGNORECASE)
LANGUAGES = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust", ".java": "java",
    ".rb": "ruby", ".c": "c", ".h": "c", ".cpp": "cpp", ".sh": "shell", ".toml": "toml", ".yaml": "yaml",
    ".yml": "yaml", ".md": "markdown", ".markdown": "markdown", ".rst": "restructuredtext", ".txt": "text",
}
SHALLOW_UNSUPPORTED = "does not support shallow"
MIN_CLONE_TIMEOUT_S = 60.0
SIZE_POLL_S = 0.25


class GitHubProblem(Exception):
    """A repo or listing that could not be collected (the message is the reason)."""


class RepoTarget(BaseModel):
    clone_url: str
    web_url: str
    """Where people browse the repo; file URLs are ``<web_url>/blob/HEAD/<path>``."""
    name: str
    size_bytes: int | None = None
    """Size reported by the GitHub API, when known (checked before cloning)."""


async def collect_github(url: str, *, settings: Settings, guard: UrlGuard) -> AsyncIterator[CollectedItem]:
    """Raw documents for every kept file of the repo(s) a URL names; failures come back as `Problem`s."""
    try:
        targets = await resolve_targets(url, settings=settings, guard=guard)
    except UrlRefused as exc:
        yield Problem(url=url, reason=str(exc), refused=True)
        return
    except GitHubProblem as exc:
        yield Problem(url=url, reason=str(exc))
        return
    for target in targets:
        async for item in collect_repo(target, settings=settings, guard=guard):
            yield item


def _check_scheme(url: str, guard: UrlGuard) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme == "http" and parts.hostname and guard.is_allowed_host(parts.hostname):
        return  # plain http only to hosts the user opened explicitly (a local test server)
    if scheme == "http":
        raise UrlRefused(f"{url!r}: git repos are cloned over https only")
    raise UrlRefused(f"{url!r}: only https git URLs are cloned, not {scheme or 'scp-style ssh'!r}")


async def resolve_targets(
    url: str, *, settings: Settings, guard: UrlGuard, api_base: str = GITHUB_API
) -> list[RepoTarget]:
    """The repos a URL names: one for a repo or ``.git`` URL, the owner's public repos for a profile URL."""
    url = url.strip()
    _check_scheme(url, guard)
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.path.endswith(".git") and segments:
        web_url = url.removesuffix(".git")
        name = segments[-1].removesuffix(".git")
        return [RepoTarget(clone_url=url, web_url=web_url, name=name)]
    if (parts.hostname or "").lower() not in GITHUB_HOSTS or not segments:
        raise GitHubProblem(f"{url!r} is neither a GitHub user, org or repo URL nor a git URL ending in .git")
    owner = segments[0]
    if len(segments) == 1:
        return await list_owner_repos(owner, settings=settings, guard=guard, api_base=api_base)
    repo = segments[1].removesuffix(".git")
    web_url = f"https://github.com/{owner}/{repo}"
    return [RepoTarget(clone_url=f"{web_url}.git", web_url=web_url, name=repo)]


async def list_owner_repos(
    owner: str, *, settings: Settings, guard: UrlGuard, api_base: str = GITHUB_API
) -> list[RepoTarget]:
    """Public repos of a user or org from the GitHub REST API, most recently pushed first, forks left out
    (a fork's files are mostly someone else's writing)."""
    limit = settings.crawl.github_max_repos
    listing = f"{api_base.rstrip('/')}/users/{owner}/repos?per_page={min(100, max(limit * 2, 10))}&sort=pushed&type=owner"
    data = await _get_json(listing, settings=settings, guard=guard)
    if not isinstance(data, list):
        raise GitHubProblem(f"GitHub listed no repos for {owner!r} ({str(data)[:200]})")
    targets = []
    for repo in data:
        if not isinstance(repo, dict) or repo.get("fork") or repo.get("private"):
            continue
        web_url = str(repo.get("html_url") or "")
        clone_url = str(repo.get("clone_url") or (web_url + ".git" if web_url else ""))
        if not clone_url:
            continue
        size_kb = repo.get("size")
        targets.append(
            RepoTarget(
                clone_url=clone_url,
                web_url=web_url or clone_url.removesuffix(".git"),
                name=str(repo.get("name") or PurePosixPath(urlsplit(clone_url).path).stem),
                size_bytes=int(size_kb) * 1024 if isinstance(size_kb, int) else None,
            )
        )
        if len(targets) >= limit:
            break
    return targets


async def _get_json(url: str, *, settings: Settings, guard: UrlGuard) -> object:
    """GET a JSON document through the URL guard's session, checking every redirect hop too."""
    import aiohttp

    crawl = settings.crawl
    headers = {"Accept": "application/vnd.github+json", "User-Agent": crawl.user_agent}

    async def check(hop_url: str) -> CheckedUrl:
        _check_scheme(hop_url, guard)
        return await guard.resolve_async(hop_url)

    async with guarded_session(guard, timeout_s=crawl.timeout_s, headers=headers) as session:

        async def send(current: CheckedUrl, hop: int) -> tuple[int, str | None, bytes]:
            try:
                async with session.get(current.url, allow_redirects=False) as response:
                    location = response.headers.get("location")
                    if response.status in REDIRECT_STATUSES and location:
                        return response.status, location, b""
                    if response.status != 200:
                        raise GitHubProblem(f"{current.url}: GitHub answered HTTP {response.status}")
                    return response.status, None, await read_capped(response, crawl.max_bytes)
            except FetchFailed as exc:
                raise GitHubProblem(f"{current.url}: answer too large ({exc})") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise GitHubProblem(f"{current.url}: request failed ({exc.__class__.__name__}: {exc})") from exc

        try:
            final, (_, _, body) = await follow_redirects(url, send, lambda answer: answer[1], guard=guard,
                                                         max_redirects=crawl.max_redirects, check=check)
        except TooManyRedirects as exc:
            raise GitHubProblem(str(exc)) from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise GitHubProblem(f"{final.url}: answer is not JSON") from exc


async def collect_repo(target: RepoTarget, *, settings: Settings, guard: UrlGuard) -> AsyncIterator[CollectedItem]:
    """Clone one repo into a temp folder and yield its README, docs and source files."""
    limits = settings.crawl
    if target.size_bytes is not None and target.size_bytes > limits.github_max_repo_bytes:
        yield Problem(
            url=target.web_url,
            reason=f"repo is {target.size_bytes:,} bytes, over the {limits.github_max_repo_bytes:,} allowed",
        )
        return
    with tempfile.TemporaryDirectory(prefix="twin-git-") as workdir:
        checkout = Path(workdir) / "repo"
        try:
            await clone(target.clone_url, checkout, settings=settings, guard=guard, home=Path(workdir))
            files = await _list_files(checkout, settings)
        except UrlRefused as exc:
            yield Problem(url=target.web_url, reason=str(exc), refused=True)
            return
        except GitHubProblem as exc:
            yield Problem(url=target.web_url, reason=str(exc))
            return
        total = 0
        async for path, data in _read_blobs(checkout, files):
            total += len(data)
            if total > limits.github_max_repo_bytes:
                yield Problem(
                    url=target.web_url,
                    reason=f"repo files exceed {limits.github_max_repo_bytes:,} bytes; stopped after {path}",
                )
                return
            document = _document(target, path, data, limits.github_max_file_bytes)
            if document is not None:
                yield document


def _git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_LFS_SKIP_SMUDGE": "1",
    }


def _pinned_address(checked: CheckedUrl) -> list[str]:
    """``-c http.curloptResolve=host:port:address`` for an address the guard approved (none for literals)."""
    if checked.host.strip("[]") in {str(address) for address in checked.addresses} or not checked.addresses:
        return []
    address = str(checked.addresses[0])
    shown = f"[{address}]" if ":" in address else address
    return ["-c", f"http.curloptResolve={checked.host}:{checked.port}:{shown}"]


async def clone(url: str, dest: Path, *, settings: Settings, guard: UrlGuard, home: Path) -> None:
    """Shallow, filtered, https-only clone of `url` into `dest` (no checkout), within size and time caps."""
    _check_scheme(url, guard)
    checked = await guard.resolve_async(url)
    scheme = checked.scheme
    limits = settings.crawl
    config = [
        "-c", "protocol.allow=never",
        "-c", "protocol.https.allow=always",
        "-c", f"protocol.http.allow={'always' if scheme == 'http' else 'never'}",
        "-c", "http.followRedirects=false",
        "-c", "credential.helper=",
        "-c", "core.hooksPath=/dev/null",
        "-c", "transfer.fsckObjects=true",
        *_pinned_address(checked),
    ]
    base = ["clone", "--quiet", "--single-branch", "--no-tags", "--no-checkout",
            f"--filter=blob:limit={limits.github_max_file_bytes}"]
    timeout = max(limits.timeout_s, MIN_CLONE_TIMEOUT_S)
    error = await _run_git([*config, *base, "--depth", "1", "--", checked.url, str(dest)], dest, settings, home, timeout)
    if error and SHALLOW_UNSUPPORTED in error:
        shutil.rmtree(dest, ignore_errors=True)
        error = await _run_git([*config, *base, "--", checked.url, str(dest)], dest, settings, home, timeout)
    if error:
        raise GitHubProblem(f"git clone failed: {error}")


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


async def _run_git(args: list[str], dest: Path, settings: Settings, home: Path, timeout: float) -> str | None:
    """Run git; None on success, else its last error lines. Killed past `timeout` or the repo size cap."""
    limit = settings.crawl.github_max_repo_bytes
    with tempfile.TemporaryFile() as stderr:
        process = await asyncio.create_subprocess_exec(
            "git", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            env=_git_env(home), start_new_session=True,
        )
        started = time.monotonic()
        reason = None
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), SIZE_POLL_S)
                break
            except TimeoutError:
                pass
            if time.monotonic() - started > timeout:
                reason = f"git took longer than {timeout:.0f} s"
            elif dest.exists() and await asyncio.to_thread(_folder_bytes, dest) > limit:
                reason = f"repo is larger than the {limit:,} bytes allowed"
            if reason:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
                return reason
        if process.returncode == 0:
            return None
        stderr.seek(0)
        lines = [line for line in stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return " ".join(lines[-3:]) or f"git exited with {process.returncode}"


async def _git_output(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    process = await asyncio.create_subprocess_exec(
        "git", "-C", str(repo), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_git_env(repo.parent),
    )
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        raise GitHubProblem(f"git {args[0]} failed: {err.decode('utf-8', 'replace').strip()[:300]}")
    return out


def _wanted(path: str, extensions: set[str]) -> bool:
    parts = PurePosixPath(path).parts
    if any(part.lower() in VENDORED_DIRS or part.startswith(".") for part in parts[:-1]):
        return False
    name = parts[-1]
    return bool(README_RE.match(name)) or PurePosixPath(name).suffix.lower() in extensions


def _priority(path: str) -> tuple[int, str]:
    """READMEs first, then docs, then everything else, so the file cap keeps what says most."""
    parts = PurePosixPath(path).parts
    if README_RE.match(parts[-1]):
        return (0 if len(parts) == 1 else 1, path)
    if parts[0].lower() in {"docs", "doc"}:
        return (2, path)
    return (3, path)


async def _list_files(repo: Path, settings: Settings) -> list[tuple[str, str]]:
    """(path, blob id) of the files to read: wanted by name, present locally (the partial clone left blobs over
    the size limit on the server), at most `github_max_files`."""
    tree = await _git_output(repo, "ls-tree", "-r", "-z", "HEAD")
    missing_out = await _git_output(repo, "rev-list", "--objects", "--missing=print", "HEAD")
    missing = {line[1:].strip() for line in missing_out.decode().splitlines() if line.startswith("?")}
    extensions = {ext.lower() for ext in settings.crawl.github_extensions}
    files = []
    for entry in tree.decode("utf-8", "replace").split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, blob = meta.split()
        if kind != "blob" or mode == "120000" or blob in missing:  # symlinks and too-large blobs left out
            continue
        if _wanted(path, extensions):
            files.append((path, blob))
    files.sort(key=lambda item: _priority(item[0]))
    return files[: settings.crawl.github_max_files]


async def _read_blobs(repo: Path, files: list[tuple[str, str]]) -> AsyncIterator[tuple[str, bytes]]:
    if not files:
        return
    out = await _git_output(repo, "cat-file", "--batch", stdin="".join(f"{blob}\n" for _, blob in files).encode())
    position = 0
    for path, _ in files:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        if len(header) < 3 or header[1] != b"blob":
            position = header_end + 1
            continue
        size = int(header[2])
        data = out[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
        yield path, data


def _document(target: RepoTarget, path: str, data: bytes, max_file_bytes: int) -> RawDocument | None:
    if len(data) > max_file_bytes or b"\0" in data[:8000]:
        return None  # too large (the server ignored the filter) or binary
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    suffix = PurePosixPath(path).suffix.lower()
    name = PurePosixPath(path).name
    is_prose = suffix in ARTICLE_SUFFIXES or bool(README_RE.match(name))
    return RawDocument(
        url=f"{target.web_url}/blob/HEAD/{path}",
        platform=Platform.github,
        kind=Kind.article if is_prose else Kind.code,
        title=f"{target.name}/{path}",
        text=text,
        metadata={
            "language": LANGUAGES.get(suffix, suffix.lstrip(".") or "text"),
            "repo": target.web_url,
            "path": path,
            "bytes": len(data),
            "source": "git",
        },
    )
