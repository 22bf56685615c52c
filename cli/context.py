"""What every command needs: settings, stores opened lazily, output as rich text or JSON, clean errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

from twin.domain import TwinError

if TYPE_CHECKING:  # settings and stores load when a command runs: `twin --help` stays fast
    from twin.settings import Settings
    from twin.store import DocumentStore

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]Error:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors meant for the user into a message on stderr and a non-zero exit."""
    try:
        yield
    except TwinError as exc:
        fail(str(exc), 2 if exc.status_code == 404 else 1)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        fail(str(exc))


def settings() -> Settings:
    from twin.settings import get_settings

    return get_settings()


@contextmanager
def open_store() -> Iterator[DocumentStore]:
    from twin.store import DocumentStore

    config = settings()
    config.ensure_dirs()
    store = DocumentStore.from_url(config.resolved_database_url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_ingestion() -> Iterator[Any]:
    """Store + vector store + embedder: the pipeline's dependencies (the vector store locks its folder)."""
    from ingestion.pipeline import IngestionDeps
    from twin.vectors import Embedder, VectorStore

    config = settings()
    with open_store() as store:
        try:
            vectors = VectorStore(config, Embedder(config))
        except RuntimeError as exc:  # qdrant-client's message when another process holds the folder
            raise TwinError(
                f"The vector store at {config.resolved_qdrant_path} is in use by another process "
                f"(is `twin serve` running? then use the web page or API). ({exc})"
            ) from exc
        try:
            yield IngestionDeps(settings=config, store=store, vectors=vectors)
        finally:
            vectors.close()


def print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    sys.stdout.write(text + "\n")


class ServiceClient:
    """The CLI's way to a running `twin serve` (it owns the embedded stores while it runs)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30.0)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.http.post(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.http.delete(path, **kwargs)

    @staticmethod
    def check(response: Any) -> Any:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise TwinError(f"{detail} (HTTP {response.status_code})")
        return response.json()

    def wait_for_job(self, job_id: str, on_progress: Any = None) -> dict[str, Any]:
        import time

        while True:
            job = self.check(self.get(f"/api/jobs/{job_id}"))
            if on_progress:
                on_progress(job)
            if job["status"] in ("succeeded", "failed"):
                if job["status"] == "failed":
                    raise TwinError(f"Job {job_id} failed: {job.get('error')}")
                return job
            time.sleep(0.5)


def service_client() -> ServiceClient | None:
    """A client for the running service, or None when none answers (then commands open the stores)."""
    import httpx

    config = settings()
    try:
        httpx.get(config.resolved_service_url + "/api/health", timeout=0.5)
    except httpx.HTTPError:
        return None
    return ServiceClient(config.resolved_service_url, config.serve.api_token)


def require_service() -> ServiceClient:
    """The running service's client, or exit with how to start it (commands that need the model)."""
    client = service_client()
    if client is None:
        fail(f"No service at {settings().resolved_service_url}: start it with `twin serve`.")
    return client
