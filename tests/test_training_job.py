"""Real SmolLM2 LoRA training with 2 Ray Train workers: SFT (with a killed worker that resumes), DPO on top,
held-out perplexity, the adapter registry. One training run (a few minutes on this CPU) shared by the tests.

    .venv/bin/pytest -m slow tests/test_training_job.py
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPORA_DIR, MODELS_CACHE, load_corpus
from training.config import TrainConfig
from training.dataset import PromptCompletion
from training.job import TrainProgress, WORKER_ENV, train
from twin.domain import Adapter, JobStatus, Kind, Platform, RawDocument, Unavailable, author_folder
from twin.settings import Settings
from twin.store import DocumentStore

pytestmark = pytest.mark.slow
AUTHOR = "brandur"
MAX_STEPS = 3


class Trained:
    def __init__(self, settings: Settings, store: DocumentStore, adapter: Adapter, events: list[TrainProgress]):
        self.settings, self.store, self.adapter, self.events = settings, store, adapter, events


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    import ray

    with pytest.MonkeyPatch.context() as env:
        for key in list(os.environ):
            if key.startswith("TWIN_") and key not in {"TWIN_CORPORA_DIR", "TWIN_TEST_MODELS_DIR"}:
                env.delenv(key)
        env.setenv("HF_HUB_OFFLINE", "1")
        for key, value in WORKER_ENV.items():
            env.setenv(key, value)
        data = tmp_path_factory.mktemp("training")
        settings = Settings(data_dir=data / "data", models_path=MODELS_CACHE, _env_file=None)
        settings.train.min_words = 500
        settings.train.dpo_max_pairs = 2
        settings.train.dpo_max_new_tokens = 16
        settings.train.max_eval_examples = 4
        settings.ensure_dirs()
        store = DocumentStore.from_url(settings.resolved_database_url)
        author = store.add_author(AUTHOR)
        for i, item in enumerate(load_corpus("brandur_leach_atoms", 24)):
            raw = RawDocument(url=f"https://brandur.org/atoms/{i}", platform=Platform.x, kind=Kind.post,
                              title=item["title"], text=item["text"])
            store.upsert_document(author, None, raw, item["text"])
        config = TrainConfig.from_settings(
            settings, workers=2, max_steps=MAX_STEPS, save_steps=1, batch_size=2, max_length=256,
            learning_rate=1e-3, dpo_max_steps=1, max_failures=1, fail_worker_once=True,
        )
        ray.init(address="local", num_cpus=2, runtime_env={"env_vars": WORKER_ENV}, configure_logging=False)
        events: list[TrainProgress] = []
        try:
            adapter = train(store, AUTHOR, settings, config, progress=events.append)
            yield Trained(settings, store, adapter, events)
        finally:
            store.close()
            ray.shutdown()


def _examples(path: Path) -> list[PromptCompletion]:
    return [PromptCompletion.model_validate_json(line) for line in path.read_text().splitlines()]


def _dataset_dir(t: Trained) -> Path:
    (folder,) = (t.settings.datasets_dir / author_folder(t.store.get_author(AUTHOR))).iterdir()
    return folder


def test_a_killed_worker_resumes_from_its_last_checkpoint(trained: Trained) -> None:
    m = trained.adapter.metrics
    # the final SFT attempt started from a checkpoint (step > 0), not from scratch, and finished the run
    assert m["sft_start_step"] > 0
    assert m["sft_step"] == MAX_STEPS
    assert m["sft_steps_this_attempt"] == MAX_STEPS - m["sft_start_step"]
    sft_begins = [e for e in trained.events if e.stage == "sft" and e.event == "begin"]
    assert [e.step for e in sft_begins][0] == 0 and sft_begins[-1].step == m["sft_start_step"]
    assert len(sft_begins) == 2


def test_training_lowers_the_loss_on_the_authors_text(trained: Trained) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.perplexity import completion_nll

    torch.set_num_threads(1)
    base_path = str(MODELS_CACHE / "smollm2-135m-instruct")
    examples = _examples(_dataset_dir(trained) / "sft_train.jsonl")[:6]
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), trained.adapter.path)
    with model.disable_adapter():
        base_nll, tokens = completion_nll(model, tokenizer, examples, 256)
    tuned_nll, _ = completion_nll(model, tokenizer, examples, 256)
    assert tokens > 100
    assert tuned_nll < base_nll

    # the adapter changes the model's output
    prompt = tokenizer.apply_chat_template(examples[0].prompt, add_generation_prompt=True, return_tensors="pt")
    ids = prompt["input_ids"] if not isinstance(prompt, torch.Tensor) else prompt
    with torch.inference_mode():
        tuned_logits = model(input_ids=ids).logits
        with model.disable_adapter():
            base_logits = model(input_ids=ids).logits
    assert not torch.allclose(tuned_logits, base_logits, atol=1e-3)

    # and the training losses it logged were real numbers that went down over the run
    m = trained.adapter.metrics
    assert m["sft_first_loss"] > 0 and m["sft_train_loss"] > 0


def test_adapter_loads_standalone_from_its_folder(trained: Trained) -> None:
    from peft import PeftConfig

    folder = Path(trained.adapter.path)
    assert folder.name == "v1" and folder.parent == trained.settings.adapters_dir / author_folder(trained.store.get_author(AUTHOR))
    assert (folder / "adapter_model.safetensors").exists()
    config = PeftConfig.from_pretrained(str(folder))
    assert config.r == 16 and set(config.target_modules) >= {"q_proj", "v_proj", "down_proj"}
    saved = json.loads((folder / "train_config.json").read_text())
    assert saved["max_steps"] == MAX_STEPS and saved["workers"] == 2


def test_registry_records_the_run(trained: Trained) -> None:
    store, adapter = trained.store, trained.adapter
    author = store.get_author(AUTHOR)
    assert store.active_adapter(author) == adapter
    assert adapter.base_model == "smollm2-135m-instruct"
    stats = json.loads((Path(adapter.path) / "dataset_stats.json").read_text())
    assert adapter.dataset_hash == stats["dataset_hash"]
    assert adapter.params["lora_r"] == 16 and adapter.params["learning_rate"] == 1e-3
    assert adapter.params["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj"]
    m: dict[str, Any] = adapter.metrics
    for key in ("train_loss", "validation_loss", "perplexity_base", "perplexity_adapter", "perplexity_ratio"):
        assert m[key] > 0, key
    assert m["perplexity_ratio"] == pytest.approx(m["perplexity_adapter"] / m["perplexity_base"])
    assert m["perplexity_examples"] == min(4, stats["splits"]["test"]["examples"])
    (job,) = store.list_jobs(author, kind="train")
    assert job.status == JobStatus.succeeded and job.result["version"] == 1


def test_dpo_ran_on_top_of_the_sft_adapter(trained: Trained) -> None:
    m, params = trained.adapter.metrics, trained.adapter.params
    assert params["dpo_ran"] is True and m["dpo_pairs"] == 2
    assert m["dpo_step"] == 1
    assert "dpo_rewards_margins" in m
    # DPO's reference is a frozen copy of the SFT adapter, so its first step sees policy == reference: log 2
    assert m["dpo_first_loss"] == pytest.approx(math.log(2), abs=1e-3)
    stages = [e.stage for e in trained.events]
    assert stages.index("dpo") > stages.index("sft") and stages[-1] == "done"


def test_too_many_workers_is_refused_and_changes_nothing(trained: Trained) -> None:
    config = TrainConfig.from_settings(trained.settings, workers=64)
    with pytest.raises(Unavailable, match="needs 64 CPUs; this Ray has 2"):
        train(trained.store, AUTHOR, trained.settings, config)
    author = trained.store.get_author(AUTHOR)
    assert len(trained.store.list_adapters(author)) == 1
    assert len(trained.store.list_jobs(author)) == 1
