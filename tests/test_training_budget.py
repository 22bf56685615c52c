"""The job's time budget (`twin train --max-minutes`): past it, SFT and DPO stop at their next optimizer step,
and the adapter they learned so far is registered, saying so.

A real (tiny) run: one Ray Train worker, a budget that has run out before SFT starts, so each stage takes
exactly one step of the several it planned.

    .venv/bin/pytest -m slow tests/test_training_budget.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CORPORA_DIR, smoke_training_store
from training.config import TrainConfig
from training.job import WORKER_ENV, TrainProgress, train

pytestmark = pytest.mark.slow
AUTHOR = "brandur"


def test_stages_stop_at_the_time_budget_and_keep_what_they_learned(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    import ray

    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    settings, store = smoke_training_store(tmp_path / "data", AUTHOR)
    config = TrainConfig.from_settings(
        settings, max_steps=4, batch_size=1, gradient_accumulation_steps=1, max_length=128, save_steps=100,
        dpo_max_pairs=3, dpo_max_steps=3, dpo_gradient_accumulation_steps=1, max_failures=0,
        max_minutes=0.001,  # 0.06 s: spent while the datasets are built
    )
    ray.init(address="local", num_cpus=os.cpu_count() or 2, runtime_env={"env_vars": WORKER_ENV},
             configure_logging=False)
    events: list[TrainProgress] = []
    try:
        adapter = train(store, AUTHOR, settings, config, progress=events.append)
    finally:
        ray.shutdown()

    try:
        m = adapter.metrics
        assert (m["sft_step"], m["sft_planned_steps"], m["sft_stopped_by_budget"]) == (1, 4, 1)
        assert adapter.params["dpo_ran"] is True
        assert m["dpo_step"] == 1 and m["dpo_planned_steps"] > 1 and m["dpo_stopped_by_budget"] == 1
        assert m["perplexity_adapter"] > 0 and (Path(adapter.path) / "adapter_model.safetensors").exists()
        ends = [e.message for e in events if e.event == "end" and e.stage in ("sft", "dpo")]
        assert ends == ["time budget: stopped at step 1 of 4", f"time budget: stopped at step 1 of {int(m['dpo_planned_steps'])}"]
    finally:
        store.close()

