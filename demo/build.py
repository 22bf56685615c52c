"""Build a servable copy of the demo author's data for one base URL.

    python -m demo.build OUT_DIR --base-url http://127.0.0.1:8765
    python -m demo.build OUT_DIR --base-url http://127.0.0.1:8765 --serve   # then serve it until Ctrl-C

Into OUT_DIR it writes:

- ``site/``: the committed demo blog with ``{{BASE_URL}}`` (feed, sitemap, canonical links) and
  ``{{BASE_HOST}}`` replaced, ready for any static server at that base URL;
- ``linkedin_export.zip``: LinkedIn's "Get a copy of your data" layout (``Shares.csv``,
  ``Profile.csv``, ``Articles/Articles/*.html`` at the ZIP root);
- ``x_archive.zip``: the X archive layout (``data/tweets.js``, ``data/account.js``);
- ``repo/``: ``demo/repo`` as a git repository with a fixed history (fixed author and dates, so
  the same commit ids every time), and its bare clone at ``site/git/demo-repo.git`` prepared
  for git's dumb HTTP protocol; :mod:`demo.serve` also serves it over smart HTTP.

Running it again replaces those outputs and leaves anything else in OUT_DIR alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel

from demo.authoring import BASE_HOST_PLACEHOLDER, BASE_URL_PLACEHOLDER, DEMO_DIR

REPO_NAME = "demo-repo.git"
REPO_JUNK = ("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".venv")
ZIP_TIMESTAMP = (2024, 11, 26, 9, 0, 0)
REPO_AUTHOR = ("Tova Brannock", "tova@leakyjoint.example")
REPO_HISTORY: list[tuple[str, str, list[str]]] = [
    (
        "2024-02-11T20:14:00+01:00",
        "First puddle: contracts and the four boring checks",
        ["leakcheck/__init__.py", "leakcheck/contract.py", "leakcheck/checks.py", "leakcheck/report.py",
         "pyproject.toml", "LICENSE", ".gitignore"],
    ),
    ("2024-02-25T10:02:00+01:00", "Add the command line, with exit codes a scheduler understands",
     ["leakcheck/cli.py", "examples"]),
    ("2024-03-03T18:40:00+01:00", "Tests: the boring checks, checked", ["tests"]),
    ("2024-03-05T08:55:00+01:00", "Docs: writing a contract, and why leakcheck stays small", []),
]
"""(date, message, paths) per commit; the last commit takes every file not committed before."""


class DemoInventory(BaseModel):
    """How much writing the demo author has, counted from the committed files importers read."""

    blog_articles: int
    linkedin_posts: int
    linkedin_reshares: int
    """Shares.csv rows without commentary (plain reshares; importers drop them)."""
    linkedin_articles: int
    x_posts: int
    """Original single tweets."""
    x_threads: int
    x_thread_tweets: int
    x_replies: int
    """Replies to other accounts."""
    x_retweets: int
    repos: int
    repo_files: int

    @property
    def total_items(self) -> int:
        """Pieces of the author's own writing: posts, threads, articles and the repository."""
        return (self.blog_articles + self.linkedin_posts + self.linkedin_articles + self.x_posts
                + self.x_threads + self.repos)


class DemoBuild(BaseModel):
    """Where one build put things, and the URLs they are served at under ``base_url``."""

    out_dir: Path
    base_url: str
    site_dir: Path
    index_url: str
    feed_url: str
    sitemap_url: str
    article_urls: list[str]
    linkedin_zip: Path
    x_zip: Path
    repo_worktree: Path
    repo_bare: Path
    repo_url: str
    repo_head: str
    inventory: DemoInventory


def read_x_archive_js(text: str) -> list[dict]:
    """The JSON inside an X archive ``data/*.js`` file (``window.YTD.<name>.part0 = [...]``)."""
    match = re.match(r"\s*window\.YTD\.\w+\.part\d+\s*=\s*", text)
    if not match:
        raise ValueError("not an X archive data file: expected 'window.YTD.<name>.part<N> = '")
    return json.loads(text[match.end():])


def _repo_files(repo_dir: Path) -> list[Path]:
    files = []
    for path in sorted(repo_dir.rglob("*")):
        relative = path.relative_to(repo_dir)
        if path.is_file() and not any(part == "__pycache__" or part.endswith((".egg-info", ".pytest_cache"))
                                      for part in relative.parts) and path.suffix != ".pyc":
            files.append(relative)
    return files


def inventory(demo_dir: Path = DEMO_DIR) -> DemoInventory:
    """Count the demo author's writing in the committed site, exports and repo."""
    with open(demo_dir / "exports/linkedin/Shares.csv", newline="", encoding="utf-8") as handle:
        shares = list(csv.DictReader(handle))
    account = read_x_archive_js((demo_dir / "exports/x/data/account.js").read_text(encoding="utf-8"))
    own_id = account[0]["account"]["accountId"]
    tweets = [entry["tweet"] for entry in
              read_x_archive_js((demo_dir / "exports/x/data/tweets.js").read_text(encoding="utf-8"))]
    retweets = [tweet for tweet in tweets if tweet["full_text"].startswith("RT @")]
    self_replies = [tweet for tweet in tweets if tweet.get("in_reply_to_user_id_str") == own_id]
    other_replies = [tweet for tweet in tweets
                     if tweet.get("in_reply_to_user_id_str") not in (None, own_id)]
    thread_parents = {tweet["in_reply_to_status_id_str"] for tweet in self_replies}
    roots = [tweet for tweet in tweets
             if "in_reply_to_status_id_str" not in tweet and not tweet["full_text"].startswith("RT @")]
    threads = [tweet for tweet in roots if tweet["id_str"] in thread_parents]
    return DemoInventory(
        blog_articles=len(list((demo_dir / "site/blog").glob("*/index.html"))),
        linkedin_posts=sum(1 for row in shares if row["ShareCommentary"].strip()),
        linkedin_reshares=sum(1 for row in shares if not row["ShareCommentary"].strip()),
        linkedin_articles=len(list((demo_dir / "exports/linkedin/Articles/Articles").glob("*.html"))),
        x_posts=len(roots) - len(threads),
        x_threads=len(threads),
        x_thread_tweets=len(threads) + len(self_replies),
        x_replies=len(other_replies),
        x_retweets=len(retweets),
        repos=1 if (demo_dir / "repo").is_dir() else 0,
        repo_files=len(_repo_files(demo_dir / "repo")),
    )


def normalise_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must look like http://host:port, got {base_url!r}")
    return base_url.rstrip("/")


def substitute_placeholders(data: bytes, base_url: str) -> bytes:
    """The demo content's ``{{BASE_URL}}`` and ``{{BASE_HOST}}`` filled in for a site served at `base_url`."""
    host = urlsplit(base_url).netloc + urlsplit(base_url).path
    return data.replace(BASE_URL_PLACEHOLDER.encode(), base_url.encode()).replace(
        BASE_HOST_PLACEHOLDER.encode(), host.encode()
    )


def _copy_substituted(source: Path, target: Path, base_url: str) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(substitute_placeholders(path.read_bytes(), base_url))


def _write_zip(source: Path, target: Path, base_url: str) -> None:
    """Zip every file under ``source`` at the ZIP root, placeholders substituted, fixed timestamps."""
    target.unlink(missing_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, substitute_placeholders(path.read_bytes(), base_url))


def _git(args: list[str], cwd: Path, when: str | None = None) -> str:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": REPO_AUTHOR[0],
        "GIT_AUTHOR_EMAIL": REPO_AUTHOR[1],
        "GIT_COMMITTER_NAME": REPO_AUTHOR[0],
        "GIT_COMMITTER_EMAIL": REPO_AUTHOR[1],
    }
    if when:
        environment["GIT_AUTHOR_DATE"] = environment["GIT_COMMITTER_DATE"] = when
    result = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout.strip()


def build_repo(source: Path, worktree: Path, bare: Path) -> str:
    """Turn ``source`` into a git repository with a fixed history; bare-clone it for HTTP. Returns HEAD."""
    if shutil.which("git") is None:
        raise RuntimeError("git is needed to build the demo repository (apt-get install git)")
    shutil.rmtree(worktree, ignore_errors=True)
    shutil.copytree(source, worktree, ignore=shutil.ignore_patterns(*REPO_JUNK))
    _git(["init", "-q", "-b", "main"], worktree)
    for position, (when, message, paths) in enumerate(REPO_HISTORY):
        if position == len(REPO_HISTORY) - 1:
            _git(["add", "-A"], worktree)
        else:
            _git(["add", "--", *[path for path in paths if (worktree / path).exists()]], worktree)
        _git(["commit", "-q", "-m", message], worktree, when=when)
    shutil.rmtree(bare, ignore_errors=True)
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git(["clone", "-q", "--bare", "--no-hardlinks", str(worktree), str(bare)], worktree)
    (bare / "description").write_text("leakcheck: tiny data-contract checks for batch pipelines\n")
    _git(["repack", "-a", "-d", "-q"], bare)
    _git(["update-server-info"], bare)
    return _git(["rev-parse", "HEAD"], worktree)


def build(out_dir: str | Path, base_url: str, demo_dir: Path = DEMO_DIR) -> DemoBuild:
    """Render the demo for ``base_url`` into ``out_dir`` (see the module docstring for the layout)."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base_url = normalise_base_url(base_url)
    site_dir = out / "site"
    _copy_substituted(demo_dir / "site", site_dir, base_url)
    linkedin_zip = out / "linkedin_export.zip"
    x_zip = out / "x_archive.zip"
    _write_zip(demo_dir / "exports/linkedin", linkedin_zip, base_url)
    _write_zip(demo_dir / "exports/x", x_zip, base_url)
    repo_bare = site_dir / "git" / REPO_NAME
    head = build_repo(demo_dir / "repo", out / "repo", repo_bare)
    slugs = sorted(path.parent.name for path in (site_dir / "blog").glob("*/index.html"))
    return DemoBuild(
        out_dir=out,
        base_url=base_url,
        site_dir=site_dir,
        index_url=f"{base_url}/",
        feed_url=f"{base_url}/feed.xml",
        sitemap_url=f"{base_url}/sitemap.xml",
        article_urls=[f"{base_url}/blog/{slug}/" for slug in slugs],
        linkedin_zip=linkedin_zip,
        x_zip=x_zip,
        repo_worktree=out / "repo",
        repo_bare=repo_bare,
        repo_url=f"{base_url}/git/{REPO_NAME}",
        repo_head=head,
        inventory=inventory(demo_dir),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.build",
        description="Render the demo site, export ZIPs and git repository for one base URL.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write into (created if missing)")
    parser.add_argument(
        "--base-url", required=True, help="where the site will be served, e.g. http://127.0.0.1:8765"
    )
    parser.add_argument(
        "--serve", action="store_true", help="then serve OUT_DIR/site at the base URL until Ctrl-C"
    )
    args = parser.parse_args(argv)
    result = build(args.out_dir, args.base_url)
    print(result.model_dump_json(indent=2))
    if args.serve:
        from demo.serve import serve_directory

        parts = urlsplit(result.base_url)
        server, url = serve_directory(
            result.site_dir, host=parts.hostname or "127.0.0.1", port=parts.port or 80
        )
        print(f"serving {result.site_dir} at {url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
