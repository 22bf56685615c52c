"""A training request on a local Ray waits for CPUs that ending work is about to hand back, and is refused,
with the numbers, when they stay taken. A real local Ray with two CPUs; an actor stands in for the work.

(CI once failed here: a job started right after another in the same process found its workers' CPUs still
held for a moment, and was refused as busy.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from training.config import TrainConfig
from training.job import connect_ray, resolve_worker_cpus
from twin.domain import Unavailable
from twin.settings import Settings


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(address="local", num_cpus=2, configure_logging=False, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def settings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("TWIN_SERVE__RAY_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    return Settings(data_dir=tmp_path / "data", _env_file=None)


def _hold_every_cpu():
    import ray

    @ray.remote(num_cpus=2)
    class Holder:
        def ready(self) -> bool:
            return True

    holder = Holder.remote()
    ray.get(holder.ready.remote())
    assert ray.available_resources().get("CPU", 0) == 0
    return holder


def test_cpus_handed_back_during_the_wait_let_the_job_start_with_all_of_them(
    local_ray: None, settings: Settings
) -> None:
    import ray

    holder = _hold_every_cpu()
    threading.Timer(1.5, lambda: ray.kill(holder)).start()
    config = TrainConfig.from_settings(settings, workers=1)
    began = time.monotonic()
    assert connect_ray(settings, config) is False  # the Ray was already running: not this call's to stop
    assert 1.0 < time.monotonic() - began < settings.train.busy_wait_s
    assert resolve_worker_cpus(settings, config).cpus_per_worker == 2


def test_cpus_that_stay_taken_are_refused_with_the_numbers(local_ray: None, settings: Settings) -> None:
    import ray

    holder = _hold_every_cpu()
    settings.train.busy_wait_s = 1.0
    try:
        began = time.monotonic()
        with pytest.raises(Unavailable, match=r"Ray is busy: 0 of 2 CPUs free, training needs 1"):
            connect_ray(settings, TrainConfig.from_settings(settings, workers=1))
        assert time.monotonic() - began >= 1.0
    finally:
        ray.kill(holder)
