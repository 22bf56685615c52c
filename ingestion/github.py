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

The author's own code: when a repo has commits of theirs (``crawl.git_identities``, or on github.com the
owner's login), the clone keeps ``github_history_commits`` commits of history, and each file a commit of
theirs changed becomes one more document: the commit message and the lines that commit added, and nothing
else (context and removed lines may be someone else's; see :mod:`twin.commits`). Reading history never
reaches the network: a blob the partial clone left on the server makes that file be skipped
(``protocol.allow=never`` on every local git command stops git's lazy fetch).
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
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pydantic import BaseModel

from ingestion.types import CollectedItem, FetchFailed, Problem, UrlRefused
from ingestion.urlguard import (
    REDIRECT_STATUSES,
    CheckedUrl,
    TooManyRedirects,
    UrlGuard,
    follow_redirects,
    guarded_session,
    read_capped,
)
from twin.commits import AuthoredChange
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
CODE_LANGUAGES = frozenset({"python", "javascript", "typescript", "go", "rust", "java", "ruby", "c", "cpp", "shell"})
"""Languages whose authored changes become documents (configuration and prose files are not code style)."""
MIN_AUTHORED_LINES = 3
"""A change adding fewer non-blank lines says little about how its author writes code."""
MAX_AUTHORED_LINE_CHARS = 400
"""A longer added line is minified or generated, not written."""
NOREPLY_DOMAIN = "users.noreply.github.com"
TRAILER_RE = re.compile(r"^[A-Za-z][\w-]*-by:\s", re.IGNORECASE)
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
    owner: str | None = None
    """The github.com login (user or org) the repo belongs to; None for other git hosts."""


class GitIdentity(BaseModel):
    """Who the author is in commit metadata: emails, names and a GitHub login (all compared case-blind)."""

    emails: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    login: str | None = None

    @classmethod
    def for_target(cls, target: RepoTarget, settings: Settings) -> GitIdentity | None:
        given = [item.strip().lower() for item in settings.crawl.git_identities if item.strip()]
        identity = cls(
            emails=frozenset(item for item in given if "@" in item),
            names=frozenset(item for item in given if "@" not in item),
            login=target.owner.lower() if target.owner else None,
        )
        return identity if identity.emails or identity.names or identity.login else None

    def matches(self, name: str, email: str) -> bool:
        name, email = name.strip().lower(), email.strip().lower()
        if email in self.emails or name in self.names:
            return True
        if self.login is None:
            return False
        local, _, domain = email.partition("@")
        # GitHub's no-reply address is `login@` or `12345+login@users.noreply.github.com`
        noreply = domain == NOREPLY_DOMAIN and local.rpartition("+")[2] == self.login
        return noreply or name == self.login


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
        owner = segments[0] if (parts.hostname or "").lower() in GITHUB_HOSTS and len(segments) == 2 else None
        return [RepoTarget(clone_url=url, web_url=web_url, name=name, owner=owner)]
    if (parts.hostname or "").lower() not in GITHUB_HOSTS or not segments:
        raise GitHubProblem(f"{url!r} is neither a GitHub user, org or repo URL nor a git URL ending in .git")
    owner = segments[0]
    if len(segments) == 1:
        return await list_owner_repos(owner, settings=settings, guard=guard, api_base=api_base)
    repo = segments[1].removesuffix(".git")
    web_url = f"https://github.com/{owner}/{repo}"
    return [RepoTarget(clone_url=f"{web_url}.git", web_url=web_url, name=repo, owner=owner)]


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
                owner=owner,
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
    """Clone one repo into a temp folder and yield its README, docs and source files, then the author's own
    changes (when the repo has commits of theirs)."""
    limits = settings.crawl
    identity = GitIdentity.for_target(target, settings)
    depth = max(1, limits.github_history_commits) if identity is not None else 1
    if target.size_bytes is not None and target.size_bytes > limits.github_max_repo_bytes:
        yield Problem(
            url=target.web_url,
            reason=f"repo is {target.size_bytes:,} bytes, over the {limits.github_max_repo_bytes:,} allowed",
        )
        return
    with tempfile.TemporaryDirectory(prefix="twin-git-") as workdir:
        checkout = Path(workdir) / "repo"
        try:
            await clone(target.clone_url, checkout, settings=settings, guard=guard, home=Path(workdir), depth=depth)
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
        if identity is None:
            return
        try:
            changes = await authored_changes(checkout, identity, settings)
        except GitHubProblem as exc:
            yield Problem(url=target.web_url, reason=f"could not read the history for your own changes: {exc}")
            return
        for change, authored_at in changes:
            yield _change_document(target, change, authored_at)


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


async def clone(url: str, dest: Path, *, settings: Settings, guard: UrlGuard, home: Path, depth: int = 1) -> None:
    """Shallow (`depth` commits), filtered, https-only clone of `url` into `dest` (no checkout), within size and
    time caps."""
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
    error = await _run_git([*config, *base, "--depth", str(max(1, depth)), "--", checked.url, str(dest)], dest,
                           settings, home, timeout)
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
    # The clone is a partial one: git would fetch a missing blob from the remote on demand, unguarded.
    process = await asyncio.create_subprocess_exec(
        "git", "-C", str(repo), "-c", "protocol.allow=never", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**_git_env(repo.parent), "GIT_NO_LAZY_FETCH": "1"},
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


def _code_language(path: str, extensions: set[str]) -> str | None:
    """The language of a source file whose changes can be learned from (None for prose, config, vendored)."""
    if not _wanted(path, extensions) or README_RE.match(PurePosixPath(path).name):
        return None
    language = LANGUAGES.get(PurePosixPath(path).suffix.lower())
    return language if language in CODE_LANGUAGES else None


def added_hunks(diff: str) -> list[str]:
    """The added lines of each hunk of a ``--unified=0`` diff (context and removed lines left out)."""
    hunks: list[list[str]] = []
    current: list[str] | None = None
    for line in diff.split("\n"):
        if line.startswith("@@"):
            current = []
            hunks.append(current)
        elif current is not None and line.startswith("+"):
            current.append(line[1:])
    return [text for text in ("\n".join(lines).strip("\n") for lines in hunks) if text.strip()]


def _commit_log(log: bytes) -> list[tuple[str, str, str, str, str]]:
    """(sha, author name, author email, author date, message) of each commit, newest first."""
    commits = []
    for record in log.decode("utf-8", "replace").split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 5:
            commits.append((fields[0], fields[1], fields[2], fields[3], fields[4]))
    return commits


async def _changed_files(repo: Path, sha: str) -> list[tuple[str, str, str, str]]:
    """(status, old blob, new blob, path) of the files a commit added or modified (against its parent)."""
    raw = await _git_output(repo, "diff-tree", "-r", "-z", "--no-commit-id", "--no-renames", "--root", sha)
    fields = raw.decode("utf-8", "replace").split("\0")
    files = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.lstrip(":").split()
        if len(parts) != 5:
            continue
        _, new_mode, old_blob, new_blob, status = parts
        if status in {"A", "M"} and new_mode in {"100644", "100755"}:
            files.append((status, old_blob, new_blob, path))
    return files


async def authored_changes(
    repo: Path, identity: GitIdentity, settings: Settings
) -> list[tuple[AuthoredChange, datetime]]:
    """The author's own changes in a clone's history, newest first: for each commit of theirs (merges left
    out) and each source file it added or modified, the lines it added. A shallow clone's oldest commits are
    left out: without their parents, git would show every file they hold as added by them."""
    limits = settings.crawl
    extensions = {ext.lower() for ext in limits.github_extensions}
    log = await _git_output(repo, "log", "--no-merges", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e", "HEAD")
    shallow_file = repo / ".git" / "shallow"
    cut = set(shallow_file.read_text().split()) if shallow_file.exists() else set()
    missing_out = await _git_output(repo, "rev-list", "--objects", "--missing=print", "HEAD")
    missing = {line[1:].strip() for line in missing_out.decode().splitlines() if line.startswith("?")}
    changes: list[tuple[AuthoredChange, datetime]] = []
    for sha, name, email, date, message in _commit_log(log):
        if sha in cut or not identity.matches(name, email):
            continue
        for status, old_blob, new_blob, path in await _changed_files(repo, sha):
            language = _code_language(path, extensions)
            if language is None or new_blob in missing or (status == "M" and old_blob in missing):
                continue
            try:
                if status == "A":
                    hunks = [(await _git_output(repo, "cat-file", "blob", new_blob)).decode("utf-8").strip("\n")]
                else:
                    diff = await _git_output(repo, "diff", "--unified=0", "--no-color", "--no-ext-diff",
                                             "--no-textconv", old_blob, new_blob)
                    hunks = added_hunks(diff.decode("utf-8"))
            except (GitHubProblem, UnicodeDecodeError):
                continue  # a blob git cannot give us, or not text
            lines = [line for hunk in hunks for line in hunk.split("\n")]
            if (
                sum(1 for line in lines if line.strip()) < MIN_AUTHORED_LINES
                or max(len(line) for line in lines) > MAX_AUTHORED_LINE_CHARS
                or sum(len(hunk) for hunk in hunks) > limits.github_max_file_bytes
                or "\0" in "".join(hunks)
            ):
                continue
            change = AuthoredChange(commit=sha, path=path, language=language, message=_own_message(message),
                                    hunks=hunks)
            changes.append((change, datetime.fromisoformat(date)))
            if len(changes) >= limits.github_max_authored_changes:
                return changes
    return changes


def _own_message(message: str) -> str:
    """The commit message without trailers (``Signed-off-by: Name <email>``, ``Co-authored-by: ...``), which
    name other people."""
    kept = [line for line in message.strip().split("\n") if not TRAILER_RE.match(line)]
    return "\n".join(kept).strip() or "(no message)"


def _change_document(target: RepoTarget, change: AuthoredChange, authored_at: datetime) -> RawDocument:
    return RawDocument(
        url=f"{target.web_url}/commit/{change.commit}#{change.path}",
        platform=Platform.github,
        kind=Kind.code,
        title=f"{target.name}/{change.path} @ {change.commit[:7]}: {change.subject}"[:300],
        published_at=authored_at,
        text=change.render(),
        metadata={
            "language": change.language,
            "repo": target.web_url,
            "path": change.path,
            "commit": change.commit,
            "source": "git-commit",
        },
    )
