"""A chat run cut off by its client resumes from its LangGraph checkpoint, for real: a uvicorn server of
`create_app` with SmolLM2 on a local Ray Serve deployment, a streamed run whose client hangs up after the
first finished step, then `POST /api/runs/{id}/resume`. A run without a checkpoint is never offered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import load_corpus
from tests.test_api_chat import LiveServer, _free_port
from twin.domain import Kind, Platform, RawDocument

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple]:
    from tests.conftest import MODELS_CACHE
    from twin.settings import Settings
    from twin.store import DocumentStore

    data_dir = tmp_path_factory.mktemp("resume") / "data"
    settings = Settings(data_dir=data_dir, models_path=MODELS_CACHE, allowed_hosts=["127.0.0.1"], _env_file=None)
    settings.serve.port = _free_port()
    # Sampled drafts of 32 tokens were sometimes all discarded as restating the brief (CI, once): two
    # candidates of 48 make an empty result unlikely while the run stays short.
    settings.serve.max_new_tokens = 48
    settings.agent.candidates = 2
    settings.agent.max_revisions = 0  # no loop: a node that finished before the cut has no reason to run again
    settings.schedule.enabled = False
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    author = store.add_author("brandur")
    for number, item in enumerate(load_corpus("brandur_leach_atoms", 20)):
        raw = RawDocument(url=f"https://brandur.example/atoms/{number}", platform=Platform.x, kind=Kind.post,
                          text=item["text"])
        store.upsert_document(author, None, raw, item["text"])
    store.close()
    with LiveServer(settings) as server:
        yield settings, server
    from serving.model import stop_local_ray

    stop_local_ray()


def _run(server, run_id: str) -> dict:
    return httpx.get(f"{server.url}/api/runs/{run_id}", timeout=30).json()


def _nodes(steps: list[dict]) -> list[str]:
    return [s["node"] for s in steps if s.get("kind") == "step"]


def test_a_run_cut_by_its_client_resumes_from_its_checkpoint(live):
    settings, server = live
    body = {"author": "brandur", "prompt": "A short post about moving a job queue into Postgres.",
            "platform": "x", "drafts": 1}
    run_id = first_finished = None
    with httpx.stream("POST", server.url + "/api/chat/stream", json=body, timeout=600) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line.split(":", 1)[1])
            run_id = run_id or event["data"].get("run_id")
            if event["type"] == "step" and event["data"].get("status") == "finished":
                first_finished = event["node"]
                break  # hang up: the client is gone after the first finished step
    assert run_id and first_finished

    deadline = time.monotonic() + 120
    while (run := _run(server, run_id))["status"] == "running":
        assert time.monotonic() < deadline, "the service did not notice the client went away"
        time.sleep(0.5)
    assert run["status"] == "failed" and "can be resumed" in run["error"], run["error"]
    assert not run["drafts"]
    done_before = _nodes(run["steps"])
    assert done_before and done_before[0] == first_finished and "final" not in done_before

    page = httpx.get(server.url + "/chat", timeout=30)
    assert page.status_code == 200 and f'data-run="{run_id}"' in page.text  # offered on the chat page

    resumed = httpx.post(f"{server.url}/api/runs/{run_id}/resume", timeout=600)
    assert resumed.status_code == 200, resumed.text
    result = resumed.json()
    assert result["run_id"] == run_id and len(result["drafts"]) == 1 and result["drafts"][0]["text"].strip()

    run = _run(server, run_id)
    assert run["status"] == "succeeded" and len(run["drafts"]) == 1  # stored once
    kinds = [s["kind"] for s in run["steps"]]
    assert kinds.count("resumed") == 1
    after = _nodes(run["steps"][kinds.index("resumed"):])
    assert after and after[-1] == "final"
    assert not set(done_before) & set(after), f"re-ran {set(done_before) & set(after)}"
    assert _nodes(run["steps"]) == done_before + after

    again = httpx.post(f"{server.url}/api/runs/{run_id}/resume", timeout=60)
    assert again.status_code == 409 and "already finished" in again.json()["detail"]
    assert f'data-run="{run_id}"' not in httpx.get(server.url + "/chat", timeout=30).text


def test_a_run_without_a_checkpoint_is_not_offered_for_resuming(live):
    from twin.domain import RunStatus
    from twin.store import DocumentStore

    settings, server = live
    store = DocumentStore.from_url(settings.resolved_database_url)
    try:
        run = store.create_run(store.get_author("brandur"), {"author": "brandur", "prompt": "On queues."})
        store.update_run(run.id, status=RunStatus.failed, error="stopped")
    finally:
        store.close()
    assert f'data-run="{run.id}"' not in httpx.get(server.url + "/chat", timeout=30).text
    refused = httpx.post(f"{server.url}/api/runs/{run.id}/resume", timeout=60)
    assert refused.status_code == 409 and "no checkpoint" in refused.json()["detail"]
    assert httpx.post(f"{server.url}/api/runs/nope/resume", timeout=60).status_code == 404
