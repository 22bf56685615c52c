"""Shared fixtures: every test gets its own data dir; converted models are shared across the session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from twin.settings import Settings
from twin.store import DocumentStore, create_db_engine

from benchmarks.corpus_site import CORPORA_DIR, REPO_ROOT, load_corpus  # noqa: F401 - one corpus reader
# Converting SmolLM2 and exporting MiniLM take ~30 s each: do it once per machine, not per test.
MODELS_CACHE = Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO_ROOT / ".cache" / "models"))
POSTGRES_URL = os.environ.get("TWIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def corpus_rows(name: str, limit: int | None = None) -> list[dict]:
    """The rows of corpus `name` (CORPORA_DIR/<name>.jsonl); skips the test when that corpus is not there."""
    path = CORPORA_DIR / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"corpus {path} not available (set TWIN_CORPORA_DIR)")
    return load_corpus(name, limit)


def corpus_texts(name: str, limit: int | None = None) -> list[str]:
    """The post texts of corpus `name`; skips like corpus_rows."""
    return [row["text"] for row in corpus_rows(name, limit)]


@contextmanager
def postgres_schema(prefix: str = "twin_test") -> Iterator[tuple[str, str]]:
    """A throwaway schema in the test PostgreSQL (TWIN_TEST_POSTGRES_URL), dropped afterwards.

    Yields (a URL whose search_path is the schema, the schema's name); skips the test when PostgreSQL
    is not reachable.
    """
    try:
        admin = create_db_engine(POSTGRES_URL)
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set TWIN_TEST_POSTGRES_URL): {exc}")
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    admin.dispose()  # hold no connection while the test runs
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def smoke_training_store(data_dir: Path, author: str, posts: int = 16) -> tuple[Settings, DocumentStore]:
    """Settings and a store holding `posts` of brandur_leach_atoms' posts as `author`'s, sized for a smoke run
    of real training (8-token DPO answers, 2 scored held-out examples)."""
    from twin.domain import Kind, Platform, RawDocument

    settings = Settings(data_dir=data_dir, models_path=MODELS_CACHE, _env_file=None)
    settings.train.min_words = 500
    settings.train.dpo_max_new_tokens = 8
    settings.train.max_eval_examples = 2
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    record = store.add_author(author)
    for i, item in enumerate(load_corpus("brandur_leach_atoms", posts)):
        raw = RawDocument(url=f"https://brandur.org/atoms/{i}", platform=Platform.x, kind=Kind.post,
                          title=item["title"], text=item["text"])
        store.upsert_document(record, None, raw, item["text"])
    return settings, store


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's home or .env: point everything at tmp."""
    for key in list(os.environ):
        if key.startswith("TWIN_") and key not in {"TWIN_CORPORA_DIR", "TWIN_TEST_MODELS_DIR", "TWIN_TEST_POSTGRES_URL"}:
            monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPIK_TRACK_DISABLE", "true")
    monkeypatch.setenv("OPIK_DEFAULT_FLUSH_TIMEOUT", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    return Settings(
        data_dir=tmp_path / "data",
        models_path=MODELS_CACHE,
        allowed_hosts=["127.0.0.1", "localhost"],
        serve={"public_hosts": ["testserver.local"]},  # the Host of Litestar's TestClient
        _env_file=None,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[DocumentStore]:
    settings.ensure_dirs()
    db = DocumentStore.from_url(settings.resolved_database_url)
    yield db
    db.close()


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR} (set TWIN_CORPORA_DIR)")
    return CORPORA_DIR
