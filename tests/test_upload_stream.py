"""Export uploads stream to disk: a real service process (uvicorn in a subprocess) takes a 40 MB archive
and imports it while its peak memory barely moves; past the upload cap it answers 413 and keeps nothing.
`twin import` sends the file through the running service the same way."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from serving.app import create_app
from twin.settings import Settings

MB = 1 << 20
MEDIA_BYTES = 40 * MB

SERVICE = """
import json, sys
import uvicorn
from serving.app import create_app
from twin.settings import Settings

settings = Settings(_env_file=None, **json.loads(sys.argv[1]))
uvicorn.run(create_app(settings, with_model=False), host="127.0.0.1", port=settings.serve.port, log_level="warning")
"""


def _x_archive(path: Path, media_bytes: int = 0, text: str = "shipping the boring queue today #postgres",
               tweet_id: str = "1") -> Path:
    """An X archive: one tweet, plus (like a real one) media stored uncompressed, in 1 MB files."""
    tweet = {"tweet": {"id_str": tweet_id, "full_text": text, "created_at": "Wed Mar 06 10:00:00 +0000 2024",
                       "entities": {"hashtags": [], "urls": []}}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/account.js", 'window.YTD.account.part0 = [{"account": {"accountId": "42", '
                                            '"username": "ada", "accountDisplayName": "Ada"}}]')
        archive.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + json.dumps([tweet]))
        for number in range(media_bytes // MB):
            archive.writestr(f"data/tweets_media/{number}.jpg", os.urandom(MB), compress_type=zipfile.ZIP_STORED)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _wait(client: httpx.Client, job_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[Settings, subprocess.Popen, httpx.Client]]:
    """`create_app` under uvicorn in its own process, so its memory is measured alone."""
    settings.serve.port = _free_port()
    settings.schedule.enabled = False
    values = {"data_dir": str(settings.data_dir), "models_path": str(settings.models_path),
              "allowed_hosts": settings.allowed_hosts,
              "serve": {"port": settings.serve.port, "max_upload_bytes": settings.serve.max_upload_bytes},
              "schedule": {"enabled": False}}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen([sys.executable, "-c", SERVICE, json.dumps(values)], env=env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{settings.serve.port}", timeout=60)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the service exited during start-up"
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.3)
        yield settings, process, client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=60)


def test_a_large_archive_streams_to_disk_without_growing_the_service_memory(service, tmp_path):
    settings, process, client = service
    client.post("/api/authors", json={"name": "ada"})
    # A first small import warms up what any import needs once (the embedder's first batch, imports).
    small = _x_archive(tmp_path / "warmup.zip")
    with small.open("rb") as fh:
        warmup = client.post("/api/authors/ada/import", files={"data": ("warmup.zip", fh)})
    assert warmup.status_code == 202, warmup.text
    assert _wait(client, warmup.json()["id"])["status"] == "succeeded"

    big = _x_archive(tmp_path / "twitter-archive.zip", MEDIA_BYTES, text="a second tweet about queues",
                     tweet_id="2")
    assert big.stat().st_size > MEDIA_BYTES
    Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before_kb = _memory_kb(process.pid, "VmHWM")
    with big.open("rb") as fh:  # httpx sends a file object in blocks
        response = client.post("/api/authors/ada/import", files={"data": ("twitter-archive.zip", fh)})
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["id"])
    peak_growth = (_memory_kb(process.pid, "VmHWM") - before_kb) * 1024

    assert job["status"] == "succeeded" and job["result"]["new"] == 1, job
    # the archive arrived whole (a zip's directory is its last bytes: a cut or shifted stream does not
    # open) and, imported, leaves nothing of its size behind
    assert not any((settings.data_dir / "uploads").iterdir())
    print(f"peak RSS growth during a {big.stat().st_size / MB:.0f} MB upload and import: {peak_growth / MB:.1f} MB")
    # Read whole, the body alone would have raised the peak by the file's size (40 MB) at least.
    assert peak_growth < big.stat().st_size / 4, f"peak RSS grew {peak_growth / MB:.1f} MB"
    assert not list((settings.data_dir / "uploads").glob("upload-*")), "no partial file is left behind"
    documents = client.get("/api/authors/ada/documents").json()
    assert {d["platform"] for d in documents} == {"x"} and len(documents) == 2


def test_twin_import_uploads_through_the_running_service(service, tmp_path, monkeypatch):
    settings, _, client = service
    client.post("/api/authors", json={"name": "ada"})
    archive = _x_archive(tmp_path / "archive.zip", 3 * MB)
    monkeypatch.setenv("TWIN_DATA_DIR", str(tmp_path / "cli-data"))  # the CLI must not open the stores
    monkeypatch.setenv("TWIN_SERVE__PORT", str(settings.serve.port))
    from cli import app
    from twin.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["import", "ada", str(archive), "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 1
    assert not (settings.data_dir / "uploads" / "archive.zip").exists()  # imported, then removed
    assert not (tmp_path / "cli-data").exists()


def test_an_upload_over_the_cap_is_refused_and_nothing_is_kept(settings, tmp_path):
    settings.serve.max_upload_bytes = 2 * MB
    archive = _x_archive(tmp_path / "big.zip", 3 * MB)
    with TestClient(create_app(settings, with_model=False)) as client:
        client.post("/api/authors", json={"name": "ada"})
        refused = client.post("/api/authors/ada/import", files={"data": ("big.zip", archive.read_bytes())})
        assert refused.status_code == 413
        assert "2,097,152 bytes" in refused.json()["detail"] and "TWIN_SERVE__MAX_UPLOAD_BYTES" in refused.json()["detail"]
        # Sent without a length up front (chunked), the cap is met while streaming: the partial file goes.
        def blocks() -> Iterator[bytes]:
            boundary = b"--cap\r\nContent-Disposition: form-data; name=\"data\"; filename=\"big.zip\"\r\n\r\n"
            yield boundary
            with archive.open("rb") as fh:
                while block := fh.read(256 * 1024):
                    yield block
            yield b"\r\n--cap--\r\n"

        chunked = client.post("/api/authors/ada/import", content=blocks(),
                              headers={"Content-Type": "multipart/form-data; boundary=cap"})
        assert chunked.status_code == 413, chunked.text
        uploads = settings.data_dir / "uploads"
        assert not uploads.exists() or not any(uploads.iterdir())
        assert client.get("/api/authors/ada/documents").json() == []
        from twin.store import DocumentStore

        store = DocumentStore.from_url(settings.resolved_database_url)
        try:
            assert store.list_jobs(author=store.get_author("ada")) == []
        finally:
            store.close()


def test_upload_forms_that_are_not_an_export_get_clear_4xx(settings):
    with TestClient(create_app(settings, with_model=False)) as client:
        client.post("/api/authors", json={"name": "ada"})
        assert client.post("/api/authors/nobody/import", files={"data": ("x.zip", b"PK")}).status_code == 404
        no_file = client.post("/api/authors/ada/import", files={"other": ("x.zip", b"PK")})
        assert no_file.status_code == 400 and "`data`" in no_file.json()["detail"]
        empty = client.post("/api/authors/ada/import", files={"data": ("x.zip", b"")})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        not_multipart = client.post("/api/authors/ada/import", json={"data": "x"})
        assert not_multipart.status_code == 415
        schema = client.get("/schema/openapi.json").json()
        body = schema["paths"]["/api/authors/{author}/import"]["post"]["requestBody"]
        assert body["content"]["multipart/form-data"]["schema"]["properties"]["data"]["format"] == "binary"


async def test_job_bookkeeping_waits_on_a_locked_database_off_the_event_loop(settings: Settings):
    """While another connection holds SQLite's write lock, a job's progress and final state wait for it in
    a thread: the service's event loop (every request it answers) keeps running."""
    import asyncio
    import sqlite3

    from serving.service import TwinService
    from twin.domain import IngestReport, JobStatus

    service = TwinService(settings)
    await service.start(with_model=False)
    try:
        author = service.db.add_author("ada")
        job = service.db.create_job(author, "ingest")
        blocker = sqlite3.connect(settings.data_dir / "twin.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # a slow writer elsewhere: holds the write lock

        async def work(report_progress):
            for done in range(1, 4):
                report_progress({"done": done})
                await asyncio.sleep(0)
            return IngestReport(author="ada")

        gaps: list[float] = []
        loop = asyncio.get_running_loop()
        service._spawn(job, work)
        held_until = loop.time() + 1.5
        while loop.time() < held_until:
            before = loop.time()
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - before)
        assert service.db.get_job(job.id).status is JobStatus.running  # its writes are still waiting
        blocker.execute("COMMIT")
        blocker.close()
        finished = await service.wait_for_job(job.id, timeout_s=30)
        assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"
        assert finished.status is JobStatus.succeeded and finished.progress == {"done": 3}
    finally:
        await service.stop()
