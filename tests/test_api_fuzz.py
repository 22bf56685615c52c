"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis + hypothesis).

Every operation gets valid and invalid requests generated from the schema and sent to the real app (real
SQLite, embedded Qdrant, fastembed) through Litestar's TestClient. The properties: no answer is a server
error, and every refusal (4xx) says why in a ``detail``.

The model deployment is not started (as in tests/test_api_library.py): the chat operations then answer
503 with ``Retry-After`` by design ("the model is down, retry"), which is the only 5xx allowed, and only
for them. Not fuzzed, because a valid request starts real long-running work:

- ``startTraining``: a Ray Train SFT+DPO job on the real model (minutes of CPU per example);
- ``startIngest``: crawls the generated URLs, so a generated public host name would mean DNS and network
  traffic beyond 127.0.0.1 (the URL guard and the ingest job are tested against local servers elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from litestar.testing import TestClient
from schemathesis import GenerationMode

from serving.app import create_app
from twin.settings import Settings

NOT_FUZZED = {"startTraining", "startIngest"}
MODEL_DOWN_503 = {"chat", "chatStream", "chatCompletions", "runSchedule"}
"""Operations that need the model, which this app runs without: 503 + Retry-After is their right answer."""
BASE_URL = "http://testserver.local"
EXAMPLES = 15
"""Per operation and per run; with ~30 operations the test takes about a minute."""


@pytest.fixture(scope="module")
def api_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("fuzz")
    models = Path(__import__("os").environ.get("TWIN_TEST_MODELS_DIR", Path(__file__).parents[1] / ".cache" / "models"))
    settings = Settings(
        data_dir=tmp / "data", models_path=models, allowed_hosts=["127.0.0.1", "localhost"],
        serve={"public_hosts": ["testserver.local"]}, _env_file=None,
    )
    with TestClient(create_app(settings, with_model=False), base_url=BASE_URL,
                    raise_server_exceptions=False) as client:
        # Something to find, so paths with an existing author get past the 404.
        assert client.post("/api/authors", json={"name": "ada"}).status_code == 201
        yield client


def _send(client: TestClient, case: Any) -> Any:
    """Send a case as the bytes schemathesis would put on the wire: it serializes for ``requests``, so
    ``requests`` prepares the request (body, multipart boundary, query) and the TestClient delivers it."""
    prepared = requests.Request(**case.as_transport_kwargs(base_url=BASE_URL)).prepare()
    body = prepared.body.encode("utf-8") if isinstance(prepared.body, str) else prepared.body
    return client.request(prepared.method or case.method, prepared.url or BASE_URL, content=body,
                          headers=dict(prepared.headers))


def _problem(operation_id: str, case: Any, response: Any) -> str | None:
    """Why an answer breaks the properties, or None."""
    status = response.status_code
    where = f"{status}: {response.text[:300]}\n  reproduce: {case.as_curl_command()}"
    if status >= 500 and not (operation_id in MODEL_DOWN_503 and status == 503 and response.headers.get("retry-after")):
        return f"server error: {where}"
    if 400 <= status < 600:
        if not response.headers.get("content-type", "").startswith("application/json"):
            return f"refusal without a JSON body: {where}"
        if not str(response.json().get("detail") or "").strip():
            return f"refusal without a detail: {where}"
    return None


def test_every_operation_without_server_errors(api_client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(api_client.get("/schema/openapi.json").json())
    fuzzed: set[str] = set()
    problems: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operation_id = operation.definition.raw["operationId"]
        if operation_id in NOT_FUZZED:
            continue
        fuzzed.add(operation_id)
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=strategy)
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            response = _send(api_client, case)
            problem = _problem(operation_id, case, response)
            assert problem is None, problem

        try:
            fuzz()
        except AssertionError as exc:  # keep going: one report for every operation that fails
            problems.append(f"{operation_id}: {str(exc)[:1500]}")
    assert len(fuzzed) >= 25, sorted(fuzzed)
    assert not problems, "\n".join(problems)
