"""A DPO failure keeps the finished SFT adapter: it is registered as SFT-only with the error recorded.

A real (tiny) run: one Ray Train worker, one SFT step, then a DPO stage that fails on purpose
(``TrainConfig.fail_dpo``).

    .venv/bin/pytest -m slow tests/test_training_dpo_failure.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import CORPORA_DIR, smoke_training_store
from training.config import TrainConfig
from training.job import WORKER_ENV, TrainProgress, train
from twin.domain import JobStatus

pytestmark = pytest.mark.slow
AUTHOR = "brandur"


def test_a_failed_dpo_stage_registers_the_sft_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    import ray

    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    settings, store = smoke_training_store(tmp_path / "data", AUTHOR)
    config = TrainConfig.from_settings(
        settings, max_steps=1, batch_size=2, max_length=128, save_steps=100, dpo_max_pairs=2, dpo_max_steps=1,
        max_failures=0, fail_dpo=True,
    )
    ray.init(address="local", num_cpus=os.cpu_count() or 2, runtime_env={"env_vars": WORKER_ENV},
             configure_logging=False)
    events: list[TrainProgress] = []
    try:
        adapter = train(store, AUTHOR, settings, config, progress=events.append)
    finally:
        ray.shutdown()

    try:
        # the SFT adapter is registered, active, loadable, and says DPO did not run and why
        assert adapter.version == 1 and adapter.active
        assert adapter.params["dpo_ran"] is False
        assert "fail_dpo" in adapter.params["dpo_error"] and "DPO TRAINING FAILED" in adapter.params["dpo_error"].upper()
        assert "fail_dpo" not in {k for k in adapter.params if k != "dpo_error"}
        folder = Path(adapter.path)
        assert (folder / "adapter_model.safetensors").exists()
        saved = json.loads((folder / "train_config.json").read_text())
        assert saved["max_steps"] == 1
        m = adapter.metrics
        assert m["sft_step"] == 1 and "dpo_step" not in m
        assert m["perplexity_adapter"] > 0 and m["dpo_pairs"] >= 1
        assert m["peak_rss_mb"]["sft"] > 0 and "dpo" not in m["peak_rss_mb"]
        # the one worker used every CPU of the local Ray
        assert m["sft_torch_threads"] == (os.cpu_count() or 2) and m["sft_world_size"] == 1

        (job,) = store.list_jobs(store.get_author(AUTHOR), kind="train")
        assert job.status == JobStatus.succeeded and job.result["version"] == 1
        failed = [e for e in events if e.stage == "dpo" and e.event == "failed"]
        assert failed and "keeping SFT" in failed[0].message
        assert events[-1].stage == "done"
    finally:
        store.close()
