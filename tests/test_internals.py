"""The private internals of other libraries the code leans on, each behind a version pin in pyproject.toml.

No public API does these jobs (each test says why the internal is used). A test here fails with the
internal's name, the code that relies on it and the pinned range: an upgrade that changes one must fail
here, loudly, and not as a subtle change in what the twin does.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import tomllib
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from twin.settings import Settings

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _pin(package: str) -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    found = [Requirement(d) for d in deps if Requirement(d).name.lower() == package.lower()]
    assert found, f"{package} is not a dependency in pyproject.toml"
    return found[0]


def _broken(package: str, internal: str, user: str, why: str) -> str:
    return (f"{package} {version(package)} (pinned {_pin(package).specifier}): {internal} {why}. "
            f"{user} relies on it: adapt that code to the new {package}, then move the pin.")


@pytest.mark.parametrize("package", ["crawl4ai", "ray", "apscheduler", "torch"])
def test_each_library_whose_internals_we_use_is_pinned_to_a_range_that_holds_the_installed_version(
    package: str,
) -> None:
    pin = _pin(package)
    installed = Version(version(package))
    assert any(spec.operator in {"<", "<=", "==", "~="} for spec in pin.specifier), (
        f"pyproject.toml: {pin} has no upper bound, but the code uses {package}'s private internals "
        "(see tests/test_internals.py)"
    )
    assert pin.specifier.contains(installed, prereleases=True), (
        f"{package} {installed} is installed, outside pyproject.toml's {pin.specifier}: the internals this "
        "file checks were verified for that range only"
    )


# crawl4ai ----------------------------------------------------------------------------------------------
# ingestion/fetch.py subclasses AsyncHTTPCrawlerStrategy: `start` builds the guarded aiohttp session into
# `_session` (with `max_connections` and `_BASE_HEADERS`), and `_handle_http(url, config)` replaces the
# stock request (which raises on 3xx, reads bodies uncapped and saves feeds under ~/.crawl4ai). crawl4ai
# offers hooks for the browser strategy only; the HTTP one has no public way to do either.


def test_crawl4ai_http_strategy_has_the_members_our_subclass_overrides() -> None:
    from crawl4ai.async_crawler_strategy import AsyncHTTPCrawlerStrategy
    from crawl4ai.models import AsyncCrawlResponse

    user = "ingestion/fetch.py (GuardedHTTPStrategy)"
    strategy = AsyncHTTPCrawlerStrategy()
    for attribute in ("_session", "max_connections", "browser_config", "_BASE_HEADERS"):
        assert hasattr(strategy, attribute), _broken(
            "crawl4ai", f"AsyncHTTPCrawlerStrategy.{attribute}", user, "is gone")
    handle = getattr(AsyncHTTPCrawlerStrategy, "_handle_http", None)
    assert handle is not None and inspect.iscoroutinefunction(handle), _broken(
        "crawl4ai", "AsyncHTTPCrawlerStrategy._handle_http", user, "is gone or no longer a coroutine")
    assert list(inspect.signature(handle).parameters) == ["self", "url", "config"], _broken(
        "crawl4ai", "AsyncHTTPCrawlerStrategy._handle_http", user,
        f"changed its signature to {inspect.signature(handle)}")
    assert hasattr(AsyncHTTPCrawlerStrategy, "_session_context"), _broken(
        "crawl4ai", "AsyncHTTPCrawlerStrategy._session_context", user, "is gone")
    fields = {"html", "response_headers", "status_code", "redirected_url", "placeholder_html"}
    assert fields <= set(AsyncCrawlResponse.model_fields), _broken(
        "crawl4ai", "AsyncCrawlResponse", user, f"lost fields {fields - set(AsyncCrawlResponse.model_fields)}")


async def test_crawl4ai_sends_http_pages_through_our_session_and_our_handler(settings: Settings) -> None:
    """A loopback address is refused by the guarded session inside our `_handle_http`, which answers with
    its refusal header: seen only if crawl4ai's `crawl` still calls `_handle_http` and `_session_context`
    still opens the session our `start` built."""
    from crawl4ai import CrawlerRunConfig

    from ingestion.fetch import _REFUSED_HEADER, _build_http_strategy
    from ingestion.urlguard import UrlGuard

    strategy = _build_http_strategy(UrlGuard([]), settings)
    try:
        response = await strategy.crawl("http://localhost:9/", CrawlerRunConfig(page_timeout=5000))
        assert _REFUSED_HEADER in response.response_headers, _broken(
            "crawl4ai", "AsyncHTTPCrawlerStrategy.crawl -> _handle_http / _session_context -> start",
            "ingestion/fetch.py (GuardedHTTPStrategy)", "no longer routes a page through our overrides",
        )
    finally:
        await strategy.close()


# Ray Serve ---------------------------------------------------------------------------------------------
# serving/model.py (_enqueue_without_multiplexed_id) clears `multiplexed_model_id` in a copy of the
# request context (`ray.serve.context._serve_request_context`) before a `@serve.batch` call: batching
# splits batches by that id, and PEFT can run rows for different adapters in one batch. Serve has no
# public switch for the split.


def test_ray_serve_request_context_is_the_context_var_batching_reads() -> None:
    from ray.serve import batching
    from ray.serve import context as serve_context

    user = "serving/model.py (_enqueue_without_multiplexed_id)"
    var = getattr(serve_context, "_serve_request_context", None)
    assert isinstance(var, contextvars.ContextVar), _broken(
        "ray", "ray.serve.context._serve_request_context", user, "is no longer a ContextVar")
    current = serve_context._get_serve_request_context()
    assert dataclasses.is_dataclass(current) and "multiplexed_model_id" in {
        f.name for f in dataclasses.fields(current)
    }, _broken("ray", "ray.serve.context._RequestContext.multiplexed_model_id", user, "is gone")
    source = inspect.getsource(batching)
    assert "serve.context._get_serve_request_context()" in source and (
        "request.request_context.multiplexed_model_id" in source
    ), _broken("ray", "ray.serve.batching (the batch split by request_context.multiplexed_model_id)", user,
               "no longer reads the id from the request context our helper rewrites")


def test_ray_serve_sees_no_model_id_inside_the_helper_and_the_callers_id_after() -> None:
    from ray import serve
    from ray.serve import context as serve_context

    from serving.model import _enqueue_without_multiplexed_id

    def as_request_for(adapter: str) -> tuple[str, str]:
        serve_context._serve_request_context.set(serve_context._RequestContext(multiplexed_model_id=adapter))
        inside = _enqueue_without_multiplexed_id(serve.get_multiplexed_model_id)
        return inside, serve.get_multiplexed_model_id()

    inside, after = contextvars.copy_context().run(as_request_for, "adapters/ada/v3")
    assert (inside, after) == ("", "adapters/ada/v3"), _broken(
        "ray", "ray.serve.context._serve_request_context", "serving/model.py (_enqueue_without_multiplexed_id)",
        f"no longer carries the multiplexed model id (inside, after: {inside!r}, {after!r})")


# APScheduler -------------------------------------------------------------------------------------------
# serving/scheduler.py (ScheduleExecutor) overrides `_do_submit_job(job, run_times)`, BaseExecutor's
# abstract hook and the only way an executor learns a fire's scheduled time (the claim key), and reports
# through `_run_job_success` / `_run_job_error`, `_pending_futures`, `_eventloop` and `job._jobstore_alias`
# as APScheduler's own AsyncIOExecutor does. APScheduler 4 replaces executors altogether.


def test_apscheduler_executor_hooks_keep_their_signatures() -> None:
    from apscheduler.executors.asyncio import AsyncIOExecutor
    from apscheduler.executors.base import BaseExecutor

    user = "serving/scheduler.py (ScheduleExecutor)"
    expected = {
        "_do_submit_job": ["self", "job", "run_times"],
        "_run_job_success": ["self", "job_id", "events"],
        "_run_job_error": ["self", "job_id", "exc", "traceback"],
    }
    for name, parameters in expected.items():
        method = getattr(BaseExecutor, name, None)
        assert method is not None, _broken("apscheduler", f"BaseExecutor.{name}", user, "is gone")
        assert list(inspect.signature(method).parameters) == parameters, _broken(
            "apscheduler", f"BaseExecutor.{name}", user, f"changed its signature to {inspect.signature(method)}")
    assert "_pending_futures" in inspect.getsource(AsyncIOExecutor.start), _broken(
        "apscheduler", "AsyncIOExecutor._pending_futures", user, "is no longer set up by start()")


async def test_apscheduler_fires_reach_our_executor_with_their_scheduled_time() -> None:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from serving.scheduler import ScheduleExecutor

    fired: list[tuple[str, datetime]] = []
    events: list[JobExecutionEvent] = []
    done = asyncio.Event()

    async def fire(job_id: str, run_time: datetime) -> None:
        fired.append((job_id, run_time))
        if job_id == "broken":
            raise RuntimeError("a failing fire")

    def listen(event: JobExecutionEvent) -> None:
        events.append(event)
        if len(events) == 2:
            done.set()

    scheduler = AsyncIOScheduler(executors={"default": ScheduleExecutor(fire)}, timezone=UTC)
    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        at = datetime.now(UTC) + timedelta(milliseconds=200)
        for job_id in ("weekly", "broken"):
            scheduler.add_job("serving.scheduler:scheduled_drafts", "date", run_date=at, id=job_id)
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        scheduler.shutdown(wait=False)
    user = "serving/scheduler.py (ScheduleExecutor)"
    assert sorted(fired) == [("broken", at), ("weekly", at)], _broken(
        "apscheduler", "BaseExecutor._do_submit_job(job, run_times)", user,
        f"is not how fires reach the executor any more (fired: {fired})")
    outcome = {e.job_id: (e.code, e.jobstore, e.scheduled_run_time) for e in events}
    assert outcome == {"weekly": (EVENT_JOB_EXECUTED, "default", at), "broken": (EVENT_JOB_ERROR, "default", at)}, (
        _broken("apscheduler", "AsyncIOExecutor._run_job_success / Job._jobstore_alias", user,
                f"report differently: {outcome}"))


# torch -------------------------------------------------------------------------------------------------
# serving/quantize.py's int4/int8 CPU path calls torch's packed-weight kernels, which have no public
# names; torch is pinned to one version (the CPU wheel set-up installs).


@pytest.mark.parametrize(
    "op", ["_convert_weight_to_int4pack_for_cpu", "_weight_int4pack_mm_for_cpu", "_weight_int8pack_mm"]
)
def test_torch_packed_weight_kernels_exist(op: str) -> None:
    import torch

    assert callable(getattr(torch, op, None)), _broken(
        "torch", f"torch.{op}", "serving/quantize.py (int4/int8 CPU kernels)", "is gone")
