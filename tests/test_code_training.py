"""The author's own code: a real git repo with two people's commits, served on 127.0.0.1 and collected by
`ingestion.github`; only the author's added lines become documents, and `twin train --with-code` learns
from them (commit message -> code, docstring -> function), with its own held-out perplexity.

Also the `github` draft platform (README section, release notes, a snippet with commentary) and `chat`
refused as a draft target (private messages are never drafted for).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_corpus
from pydantic import ValidationError
from test_ingest_github import _serve, _SmartGitHandler

from ingestion.github import GitIdentity, collect_github
from ingestion.types import Problem
from ingestion.urlguard import UrlGuard
from training.dataset import build_datasets, code_instruction
from twin.commits import AuthoredChange, parse_change
from twin.domain import DRAFT_PLATFORMS, Kind, Platform, RawDocument, TwinError
from twin.settings import Settings
from twin.store import DocumentStore

AUTHOR = "ada"
ADA = ("Ada Lovelace", "ada@example.com")
BOB = ("Bob Byron", "bob@example.com")

BOB_UTIL = '''"""Small helpers."""


def bobs_percent(part, whole):
    return 100 * part / whole
'''
ADA_RETRY = '''import time


def retry_with_backoff(call, attempts=5, base_delay=0.5):
    """Call `call` until it succeeds, sleeping twice as long after each failure."""
    for attempt in range(attempts):
        try:
            return call()
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt)
'''
ADA_UTIL_ADDITION = '''

def clamp_ratio(value, low=0.0, high=1.0):
    """Keep a ratio inside [low, high]; NaN counts as low."""
    if value != value:  # NaN
        return low
    return max(low, min(high, value))
'''
BOB_RETRY_ADDITION = '''

def bobs_jitter(delay):
    return delay * 1.1
'''
ADA_DURATIONS = '''import re

UNITS = {"s": 1, "m": 60, "h": 3600}
DURATION_RE = re.compile(r"^(\\d+)([smh])$")


def parse_duration(text):
    """Seconds in a duration like `5m` or `2h` (a bare number of seconds is not accepted)."""
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match[1]) * UNITS[match[2]]
'''
ADA_DURATIONS_ADDITION = '''

_cache = {}


def cached_duration(text):
    """`parse_duration`, remembered: config files repeat the same few durations."""
    if text not in _cache:
        _cache[text] = parse_duration(text)
    return _cache[text]
'''


def _git(*args: str, cwd: Path, who: tuple[str, str] | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(cwd)}
    if who is not None:
        env.update(GIT_AUTHOR_NAME=who[0], GIT_AUTHOR_EMAIL=who[1], GIT_COMMITTER_NAME=who[0],
                   GIT_COMMITTER_EMAIL=who[1])
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env, text=True).stdout


def _commit(work: Path, who: tuple[str, str], message: str, files: dict[str, str], append: bool = False) -> str:
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((path.read_text() if append and path.exists() else "") + text)
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", message, cwd=work, who=who)
    return _git("rev-parse", "HEAD", cwd=work).strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A served folder with ``tool.git``: five commits, three of them Ada's, interleaved with Bob's."""
    root = tmp_path_factory.mktemp("code-served")
    work = root.parent / (root.name + "-work")
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    commits = {
        "bob_init": _commit(work, BOB, "Initial scaffolding", {
            "README.md": "# Tool\n\nBob's tool.\n", "src/util.py": BOB_UTIL,
        }),
        "ada_retry": _commit(work, ADA, "Add retry with exponential backoff\n\nThe nightly sync failed on flaky "
                             "networks.\n\nSigned-off-by: Ada Lovelace <ada@example.com>", {
                                 "src/retry.py": ADA_RETRY,
                                 "docs/retry.md": "# Retry\n\nRetries with backoff, written by Ada.\n",
                             }),
        "bob_jitter": _commit(work, BOB, "Jitter", {"src/retry.py": BOB_RETRY_ADDITION}, append=True),
        "ada_clamp": _commit(work, ADA, "Clamp ratios to a range", {"src/util.py": ADA_UTIL_ADDITION,
                                                                    "config.yaml": "retries: 5\n"}, append=True),
        "ada_durations": _commit(work, ADA, "Parse durations like 5m or 2h", {"src/durations.py": ADA_DURATIONS}),
        "ada_cache": _commit(work, ADA, "Cache parsed durations", {"src/durations.py": ADA_DURATIONS_ADDITION},
                             append=True),
    }
    _git("clone", "-q", "--bare", str(work), str(root / "tool.git"), cwd=root)
    _git("config", "uploadpack.allowFilter", "true", cwd=root / "tool.git")
    _git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=root / "tool.git")
    return root, commits


@pytest.fixture(scope="module")
def port(repo: tuple[Path, dict[str, str]]) -> Iterator[int]:
    handler = type("Handler", (_SmartGitHandler,), {"root": repo[0]})
    yield from _serve(handler)


def _crawl(settings: Settings, **crawl: object) -> Settings:
    return settings.model_copy(update={"crawl": settings.crawl.model_copy(update=crawl)})


async def _authored(url: str, settings: Settings) -> tuple[list[RawDocument], list[RawDocument]]:
    """(the repo's files, the author's changes) as collected."""
    items = [item async for item in collect_github(url, settings=settings, guard=UrlGuard(["127.0.0.1"]))]
    assert not [item for item in items if isinstance(item, Problem)], items
    documents = [item for item in items if isinstance(item, RawDocument)]
    changes = [d for d in documents if d.metadata.get("source") == "git-commit"]
    return [d for d in documents if d not in changes], changes


# ---------------------------------------------------------------- ingestion: only the author's lines


async def test_only_the_authors_added_lines_become_documents(settings: Settings, port: int, repo) -> None:
    _, commits = repo
    url = f"http://127.0.0.1:{port}/tool.git"
    files, changes = await _authored(url, _crawl(settings, git_identities=["ADA@example.com"]))

    assert {d.metadata["path"] for d in files} >= {"README.md", "src/util.py", "src/retry.py"}
    found = {(d.metadata["commit"], d.metadata["path"]) for d in changes}
    # Ada's python files, newest first; not the markdown or YAML she also committed, nothing of Bob's
    assert found == {
        (commits["ada_cache"], "src/durations.py"), (commits["ada_durations"], "src/durations.py"),
        (commits["ada_clamp"], "src/util.py"), (commits["ada_retry"], "src/retry.py"),
    }
    assert [d.metadata["commit"] for d in changes][0] == commits["ada_cache"]
    text = "\n".join(d.text for d in changes)
    assert "bobs_percent" not in text and "bobs_jitter" not in text and "Small helpers" not in text
    assert "Signed-off-by" not in text and "ada@example.com" not in text  # trailers name people

    by_commit = {d.metadata["commit"]: d for d in changes}
    clamp = by_commit[commits["ada_clamp"]]
    assert clamp.kind is Kind.code and clamp.platform is Platform.github
    assert clamp.url == f"http://127.0.0.1:{port}/tool/commit/{commits['ada_clamp']}#src/util.py"
    change = parse_change(clamp.text)
    assert change is not None and change.subject == "Clamp ratios to a range"
    assert change.code.strip() == ADA_UTIL_ADDITION.strip()  # exactly her lines, not Bob's file around them
    retry = parse_change(by_commit[commits["ada_retry"]].text)
    assert retry is not None and retry.body == "The nightly sync failed on flaky networks."
    assert retry.code.strip() == ADA_RETRY.strip()

    # Nobody configured: the repo's files as before, no changes (and a one-commit-deep clone)
    files_only, none = await _authored(url, settings)
    assert none == [] and {d.url for d in files_only} == {d.url for d in files}


async def test_shallow_history_never_credits_the_cut_commit(settings: Settings, port: int, repo) -> None:
    """At depth 2 the older of the two commits fetched has no parent here: git would call every file in it
    new. It is left out; only the newest commit's own lines count."""
    _, commits = repo
    _, changes = await _authored(f"http://127.0.0.1:{port}/tool.git",
                                 _crawl(settings, git_identities=["Ada Lovelace"], github_history_commits=2))
    assert [(d.metadata["commit"], d.metadata["path"]) for d in changes] == [(commits["ada_cache"], "src/durations.py")]


async def test_reading_history_never_fetches_a_blob_left_on_the_server(settings: Settings, repo, tmp_path: Path) -> None:
    """The partial clone leaves big blobs on the server; git would fetch one on demand (outside the URL
    guard) when a diff needs it. Every local git command has the network off: the file is skipped and the
    server sees no request after the clone."""
    from ingestion.github import _git_output, authored_changes, clone

    requests: list[str] = []

    class Counting(_SmartGitHandler):
        root = repo[0]

        def _backend(self) -> None:
            requests.append(self.path)
            super()._backend()

    small = _crawl(settings, git_identities=["ada@example.com"], github_max_file_bytes=300)
    for port in _serve(Counting):
        dest = tmp_path / "clone"
        await clone(f"http://127.0.0.1:{port}/tool.git", dest, settings=small, guard=UrlGuard(["127.0.0.1"]),
                    home=tmp_path, depth=50)
        after_clone = len(requests)
        listing = (await _git_output(dest, "rev-list", "--objects", "--missing=print", "HEAD")).decode()
        missing = [line[1:] for line in listing.splitlines() if line.startswith("?")]
        assert missing  # retry.py (and durations.py) are over 300 bytes
        with pytest.raises(Exception, match="cat-file failed"):
            await _git_output(dest, "cat-file", "blob", missing[0])
        changes = await authored_changes(dest, GitIdentity(emails=frozenset({"ada@example.com"})), small)
        assert {c.path for c, _ in changes} == {"src/util.py"}  # the clamp change: its blobs are small
        assert len(requests) == after_clone


def test_identity_matches_emails_names_and_the_github_login() -> None:
    identity = GitIdentity(emails=frozenset({"ada@example.com"}), names=frozenset({"ada lovelace"}), login="adal")
    assert identity.matches("Someone", "Ada@Example.com")
    assert identity.matches("ADA LOVELACE", "other@example.com")
    assert identity.matches("x", "adal@users.noreply.github.com")
    assert identity.matches("x", "1234+adal@users.noreply.github.com")
    assert identity.matches("AdaL", "laptop@localhost")
    assert not identity.matches("Bob", "bob@example.com")
    assert not identity.matches("x", "1234+notadal@users.noreply.github.com")
    assert not identity.matches("x", "adal@example.com")


def test_a_change_round_trips_and_code_with_fences_stays_whole() -> None:
    change = AuthoredChange(commit="a" * 40, path="docs/gen.py", language="python",
                            message="Emit markdown\n\nWith ```fences``` inside.",
                            hunks=['TEMPLATE = """\n```python\nprint(1)\n```\n"""', "def emit():\n    return TEMPLATE"])
    assert parse_change(change.render()) == change
    assert parse_change("def f():\n    return 1\n") is None  # an ordinary source file


# ---------------------------------------------------------------- training data: opt-in code mix


def _add_prose(store: DocumentStore) -> None:
    author = store.add_author(AUTHOR)
    for i, item in enumerate(load_corpus("brandur_leach_atoms", 30)):
        raw = RawDocument(url=f"https://ada.example/atoms/{i}", platform=Platform.x, kind=Kind.post,
                          title=item["title"], text=item["text"])
        store.upsert_document(author, None, raw, item["text"])


async def _add_code(store: DocumentStore, settings: Settings, port: int) -> list[RawDocument]:
    files, changes = await _authored(f"http://127.0.0.1:{port}/tool.git",
                                     _crawl(settings, git_identities=["ada@example.com"]))
    author = store.get_author(AUTHOR)
    for raw in files + changes:  # whole files are stored too, as `twin ingest` does
        store.upsert_document(author, None, raw, raw.text)
    return changes


@pytest.fixture
def small_settings(settings: Settings) -> Settings:
    settings.train.min_words = 500
    settings.train.max_length = 128
    settings.train.dpo = False
    return settings


async def test_code_examples_only_when_opted_in(
    store: DocumentStore, small_settings: Settings, corpora_dir: Path, port: int, tmp_path: Path
) -> None:
    _add_prose(store)
    changes = await _add_code(store, small_settings, port)

    plain = build_datasets(store, AUTHOR, small_settings, tmp_path / "plain")
    every = [ex for name in ("train", "validation", "test") for ex in plain.splits[name]]
    assert not [ex for ex in every if ex.kind is Kind.code] and plain.code_test == []
    assert "code_test" not in plain.files

    mixed = build_datasets(store, AUTHOR, small_settings, tmp_path / "mixed", with_code=True)
    # the prose splits do not move when code joins: code is split on its own
    for name in ("train", "validation", "test"):
        prose = [ex for ex in mixed.splits[name] if ex.kind is not Kind.code]
        assert [ex.answer for ex in prose] == [ex.answer for ex in plain.splits[name]]
    assert all(ex.kind is not Kind.code for ex in mixed.splits["test"])  # held-out code is scored apart
    code = [ex for name in ("train", "validation") for ex in mixed.splits[name] if ex.kind is Kind.code]
    code += mixed.code_test
    assert mixed.code_test and [ex for ex in mixed.splits["train"] if ex.kind is Kind.code]
    # by document: every change is in exactly one place, all of them used
    places = {ex.url: name for name in ("train", "validation") for ex in mixed.splits[name] if ex.kind is Kind.code}
    places.update({ex.url: "test" for ex in mixed.code_test})
    assert set(places) == {d.url for d in changes}
    assert not {ex.url for ex in mixed.code_test} & {ex.url for ex in mixed.splits["train"]}

    answers = "\n".join(ex.answer for ex in code)
    assert "bobs_percent" not in answers and "bobs_jitter" not in answers
    instructions = {ex.instruction for ex in code}
    assert 'Write the python code for the commit "Clamp ratios to a range" in src/util.py.' in instructions
    assert any(i.startswith('Write the python code for the commit "Add retry with exponential backoff" in '
                            "src/retry.py. The nightly sync failed on flaky networks.") for i in instructions)
    # docstring -> the whole function, in her naming and comments
    by_instruction = {ex.instruction: ex.answer for ex in code}
    doc_prompt = "Write the python function `clamp_ratio` in src/util.py: Keep a ratio inside [low, high]; NaN counts as low."
    assert by_instruction[doc_prompt].startswith("def clamp_ratio(value, low=0.0, high=1.0):")
    assert "# NaN" in by_instruction[doc_prompt]

    written = [json.loads(line) for line in mixed.files["train"].read_text().splitlines()]
    assert any(row["kind"] == "code" for row in written)
    code_rows = [json.loads(line) for line in mixed.files["code_test"].read_text().splitlines()]
    assert len(code_rows) == len(mixed.code_test)
    stats = json.loads(mixed.files["stats"].read_text())
    assert stats["code_documents"] == 4 and stats["code_examples"]["test"] == len(mixed.code_test)
    assert mixed.dataset_hash != plain.dataset_hash


async def test_asking_for_code_without_any_says_how_to_get_it(
    store: DocumentStore, small_settings: Settings, corpora_dir: Path, tmp_path: Path
) -> None:
    _add_prose(store)
    with pytest.raises(TwinError, match="GIT_IDENTITIES"):
        build_datasets(store, AUTHOR, small_settings, tmp_path / "ds", with_code=True)
    assert not (tmp_path / "ds").exists()


def test_code_instruction_keeps_the_message_short() -> None:
    change = AuthoredChange(commit="b" * 40, path="a.py", language="python",
                            message="Subject\n\n" + "word " * 100 + "\n\nSecond paragraph.", hunks=["x = 1"])
    text = code_instruction(change, 1, 3)
    assert text.startswith('Write the python code for the commit "Subject" in a.py. word')
    assert text.endswith("... (part 2 of 3)") and "Second paragraph" not in text


# ---------------------------------------------------------------- held-out code perplexity, real model


@pytest.mark.slow
async def test_held_out_code_perplexity_under_the_real_model(
    store: DocumentStore, small_settings: Settings, corpora_dir: Path, port: int, tmp_path: Path
) -> None:
    """The code test split is scored by the same perplexity code as the prose, base model vs adapter, and
    lands in the adapter's metrics under its own names."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.job import code_perplexity_metrics
    from training.perplexity import base_and_adapter_perplexity
    from twin.models import resolve_base_model

    _add_prose(store)
    await _add_code(store, small_settings, port)
    bundle = build_datasets(store, AUTHOR, small_settings, tmp_path / "ds", with_code=True)
    held_out = bundle.code_test[:3]
    assert held_out

    base_path = resolve_base_model(small_settings)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    adapter = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapter.save_pretrained(tmp_path / "adapter")  # fresh: B = 0, so it predicts exactly as the base

    report = base_and_adapter_perplexity(base_path, str(tmp_path / "adapter"), held_out, max_length=128)
    assert report.examples == len(held_out) and report.tokens > 10
    assert math.isfinite(report.base) and 1.0 < report.base < 200.0
    assert report.ratio == pytest.approx(1.0, abs=1e-3)
    metrics = code_perplexity_metrics(report)
    assert metrics["perplexity_code_base"] == report.base and metrics["perplexity_code_examples"] == len(held_out)
    assert code_perplexity_metrics(None) == {}  # no code mix, no code numbers


@pytest.mark.slow
def test_with_code_training_runs_on_ray_and_reports_code_perplexity(
    store: DocumentStore, small_settings: Settings, corpora_dir: Path, port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`twin train --with-code` end to end on a real local Ray (SmolLM2, one Ray Train worker, one SFT step,
    no DPO): the job succeeds, registers v1 for the author with both the prose and the held-out code
    perplexities (finite, base and adapter), and the dataset snapshot it trained on holds the author's code
    examples, with the held-out code kept out of the training split."""
    import asyncio

    import ray

    from training.config import TrainConfig
    from training.job import WORKER_ENV, train
    from twin.domain import JobStatus, author_folder

    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    small_settings.train.max_eval_examples = 2
    small_settings.ensure_dirs()
    _add_prose(store)
    asyncio.run(_add_code(store, small_settings, port))
    author = store.get_author(AUTHOR)
    config = TrainConfig.from_settings(small_settings, workers=1, max_steps=1, batch_size=2, max_length=128,
                                       save_steps=100, max_failures=0, dpo=False, code_mix=True)
    ray.init(address="local", num_cpus=min(os.cpu_count() or 2, 2), runtime_env={"env_vars": WORKER_ENV},
             configure_logging=False)
    try:
        adapter = train(store, AUTHOR, small_settings, config)
    finally:
        ray.shutdown()

    (job,) = store.list_jobs(author, kind="train")
    assert job.status == JobStatus.succeeded and job.result["version"] == 1
    assert adapter.version == 1 and adapter.active and store.active_adapter(author) == adapter
    assert (Path(adapter.path) / "adapter_model.safetensors").is_file()
    assert adapter.params["code_mix"] is True and adapter.params["dpo_ran"] is False

    m = adapter.metrics
    for kind in ("", "_code"):
        base, tuned, ratio = (m[f"perplexity{kind}_{name}"] for name in ("base", "adapter", "ratio"))
        assert all(math.isfinite(value) and value > 0 for value in (base, tuned, ratio)), (kind, m)
        assert ratio == pytest.approx(tuned / base)
        assert m[f"perplexity{kind}_examples"] >= 1 and m[f"perplexity{kind}_tokens"] > 10
    assert m["sft_step"] == 1 and math.isfinite(m["train_loss"])

    stats = json.loads((Path(adapter.path) / "dataset_stats.json").read_text())
    assert adapter.dataset_hash == stats["dataset_hash"]
    assert stats["code_documents"] == 4 and stats["code_examples"]["train"] > 0
    assert m["perplexity_code_examples"] == min(2, stats["code_examples"]["test"])
    assert m["dataset"]["code_test"]["examples"] == stats["code_examples"]["test"]
    used = small_settings.datasets_dir / author_folder(author) / job.id[:8]
    trained_on = [json.loads(line) for line in (used / "sft_train.jsonl").read_text().splitlines()]
    code_rows = [row for row in trained_on if row["kind"] == "code"]
    assert len(code_rows) == stats["code_examples"]["train"]
    held_out = [json.loads(line) for line in (used / "code_test.jsonl").read_text().splitlines()]
    assert held_out and not {row["url"] for row in held_out} & {row["url"] for row in code_rows}


# ---------------------------------------------------------------- the github platform and the chat refusal

README = """## Retrying flaky calls

`retry_with_backoff` calls a function until it succeeds, doubling the wait after each failure.

- five attempts by default
- only `OSError` is retried; anything else is a bug and should surface
"""
RELEASE = """## v0.4

- Durations like `5m` and `2h` are parsed by `parse_duration`.
- Ratios are clamped to a range; NaN counts as the low end.
"""
SNIPPET = (
    "Durations in our config files go through this. A bare number is refused on purpose: nobody remembers "
    "whether it meant seconds or minutes.\n\n"
    "```python\ndef parse_duration(text):\n    match = DURATION_RE.match(text.strip())\n"
    "    return int(match[1]) * UNITS[match[2]]\n```\n"
)
WALL = ("I wrote a small function that retries calls with exponential backoff because the nightly sync kept "
        "failing on flaky networks, and it has worked well since then.")
BARE_CODE = "```python\ndef f():\n    return 1\n```"


def test_github_drafts_go_through_their_platform_rules() -> None:
    from evals.rules import check_platform_rules

    for text in (README, RELEASE, SNIPPET):
        assert check_platform_rules(text, Platform.github).violations == [], text
    assert any(v.startswith("markdown_shape:") for v in check_platform_rules(WALL, "github").violations)
    bare = check_platform_rules(BARE_CODE, "github")
    assert [v.split(":")[0] for v in bare.violations] == ["code_commentary"] and bare.score < 1
    assert check_platform_rules(WALL, "linkedin").violations == []  # other platforms are not held to it


def test_github_briefs_say_which_piece_is_wanted() -> None:
    from tools.prompts import brief_instruction, github_piece, system_prompt

    assert github_piece("Release notes for v0.4") == "set of release notes"
    assert github_piece("A snippet showing how retry works") == "code snippet with commentary"
    assert github_piece("Installing the tool") is None
    assert brief_instruction(Platform.github, "Installing the tool", ["pip"]).startswith(
        'Write a README section titled "Installing the tool"')
    assert brief_instruction(Platform.github, "Write about what changed in the changelog for 2.0", []).startswith(
        "Write a set of release notes")
    assert "fenced blocks" in system_prompt("ada", Platform.github)
    assert brief_instruction(Platform.linkedin, "Installing the tool", []).startswith("Write a LinkedIn post")


async def test_a_github_draft_uses_the_authors_code_and_is_held_to_the_rules(
    settings: Settings, store: DocumentStore, corpora_dir: Path, port: int
) -> None:
    """Through the real graph, tools, metrics and embedded Qdrant (the model scripted, as in
    test_agent_graph): a wall of text fails GitHub's rules and is resampled, a snippet with commentary passes;
    the author's own committed code is among what retrieval hands the draft."""
    from agent_support import ScriptedModel, embedded_world

    from agents.context import AgentContext
    from agents.deps import AgentDeps
    from agents.run import run_to_completion
    from agents.schemas import DraftRequest
    from ingestion.pipeline import resume_embedding

    world = await embedded_world(settings, store, limit=8, author_name=AUTHOR)
    try:
        _, changes = await _authored(f"http://127.0.0.1:{port}/tool.git",
                                     _crawl(settings, git_identities=["ada@example.com"]))
        for raw in changes:
            store.upsert_document(world.author, None, raw, raw.text)
        await resume_embedding(world.ingestion, world.author)

        model = ScriptedModel([WALL, SNIPPET])
        deps = AgentDeps(settings=settings, store=store, ingestion=world.ingestion, model=model)
        context = AgentContext.from_settings(settings, style_threshold=0.0, stylometry_threshold=0.0,
                                             grounding_threshold=0.0, topic_threshold=0.0, max_revisions=2,
                                             max_new_tokens=64, candidates=1)
        request = DraftRequest(author=AUTHOR, prompt="A snippet showing how parse_duration handles 5m and 2h",
                               platform=Platform.github)
        result = await run_to_completion(deps, request, context=context)
    finally:
        world.close()
    [draft] = result.drafts
    assert draft.text.strip() == SNIPPET.strip() and draft.critique.passed and draft.revisions == 1
    first = model.prompts[0]
    assert "GitHub README sections, release notes and code snippets" in first[0]["content"]
    assert first[-1]["content"].rstrip().split("\n")[-1].startswith("Write a code snippet with commentary titled")
    assert any("/commit/" in source.url for source in draft.sources)
    run = store.get_run(result.run_id)
    assert any("markdown_shape" in str(d.critique) for d in run.drafts) or len(model.prompts) == 2


def test_chat_is_refused_as_a_draft_platform(settings: Settings) -> None:
    from litestar.testing import TestClient

    from agents.schemas import DraftRequest
    from serving.app import create_app
    from serving.web.forms import ChatForm, ScheduleForm, SourceForm

    assert Platform.chat not in DRAFT_PLATFORMS and Platform.github in DRAFT_PLATFORMS
    listed = DraftRequest.model_json_schema()["properties"]["platform"]["enum"]
    assert listed == [p.value for p in DRAFT_PLATFORMS]
    with pytest.raises(ValidationError, match="private chats are training data only"):
        DraftRequest(author=AUTHOR, prompt="hi", platform=Platform.chat)
    for form, values in ((ChatForm, {"author": AUTHOR, "prompt": "hi", "platform": "chat"}),
                         (ScheduleForm, {"author": AUTHOR, "cron": "0 9 * * *", "platforms": ["x", "chat"]}),
                         (SourceForm, {"url": "https://example.com", "platform": "chat"})):
        with pytest.raises(ValidationError):
            form.model_validate(values)

    with TestClient(create_app(settings, with_model=False)) as client:
        answer = client.post("/api/chat", json={"author": AUTHOR, "prompt": "hi", "platform": "chat"})
        assert answer.status_code == 400
        assert "private chats are training data only" in answer.text and "github" in answer.text
        page = client.get("/chat").text
        assert 'value="github"' in page and 'value="chat"' not in page
