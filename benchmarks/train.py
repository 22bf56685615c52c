"""Training benchmark: the product's Ray Train path against a plain TRL + PEFT loop, side by side.

    .venv/bin/python -m benchmarks.train                        # writes benchmarks/results/train.json
    .venv/bin/python -m benchmarks.train --steps 3 --dpo-steps 2  # shorter
    .venv/bin/python -m benchmarks.train --quality              # plus a whole `train()` job and its perplexity

One run, one machine, the same data (an author from ``../shared/corpora``, the product's SFT examples) and
the same model, batch (``--batch-size`` x ``--max-length`` tokens) and LoRA:

1. ``plain``: TRL ``SFTTrainer`` + PEFT in a fresh process, no Ray, torch threads = every core, TRL's
   defaults but for ``bf16=False`` (the loop in ../shared/RECIPES.md).
2. ``product``: ``training.job.run_stage("sft")`` with the product's defaults (one Ray Train worker that
   reserves every CPU of the local Ray): tokens/s, tokens/s per core, the ratio to the plain loop, the peak
   RSS of the worker process. ``--workers-compare`` adds the old layout (2 workers x 1 CPU).
3. ``dpo``: ``run_stage("dpo")`` on top of the SFT adapter with the product's defaults: peak RSS of the
   worker (the memory bound is 4 GB) and seconds per step; ``--dpo-compare`` adds the old settings
   (4 pairs per forward, 512 tokens) for the before/after.
Tokens are TRL's count of trained (non-padding) tokens; rates are over TRL's ``train_runtime``, which both
paths measure the same way. The CPU is shared: compare the numbers of one run with each other.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(os.environ.get("TWIN_CORPORA_DIR", REPO_ROOT.parent / "shared" / "corpora"))
MODELS_DIR = Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO_ROOT / ".cache" / "models"))
RESULTS = REPO_ROOT / "benchmarks" / "results" / "train.json"


def load_author(store: Any, corpus: str, limit: int) -> str:
    from twin.domain import Kind, Platform, RawDocument

    author = store.add_author(corpus)
    with (CORPORA_DIR / f"{corpus}.jsonl").open() as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            item = json.loads(line)
            short = item.get("word_count", 0) < 400
            raw = RawDocument(
                url=f"corpus://{corpus}/{i}",
                platform=Platform.x if corpus.endswith("atoms") else Platform.blog,
                kind=Kind.post if short else Kind.article,
                title=item.get("title"),
                text=item["text"],
            )
            store.upsert_document(author, None, raw, item["text"])
    return author.name


# the plain loop (runs in a child process: its own threads and its own peak RSS) ---------------------------
def plain_sft(base: str, rows: list[dict[str, Any]], steps: int, batch_size: int, max_length: int,
              threads: int, lora: dict[str, Any], learning_rate: float) -> dict[str, Any]:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, per_device_train_batch_size=batch_size, max_length=max_length, max_steps=steps,
            learning_rate=learning_rate, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
            use_cpu=True, bf16=False, completion_only_loss=True, dataloader_num_workers=0,
        )
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=AutoTokenizer.from_pretrained(base),
            peft_config=LoraConfig(task_type="CAUSAL_LM", **lora),
        )
        output = trainer.train()
    tokens = [log["num_tokens"] for log in trainer.state.log_history if "num_tokens" in log][-1]
    runtime = output.metrics["train_runtime"]
    return {
        "path": "plain TRL SFTTrainer + PEFT, no Ray",
        "steps": trainer.state.global_step,
        "cores": threads,
        "torch_threads": torch.get_num_threads(),
        "gradient_checkpointing": args.gradient_checkpointing,
        "tokens": float(tokens),
        "train_runtime_s": runtime,
        "s_per_step": runtime / trainer.state.global_step,
        "tokens_per_s": tokens / runtime,
        "tokens_per_s_per_core": tokens / runtime / threads,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_plain(**kwargs: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(plain_sft, kwds=kwargs)


# the product's path ----------------------------------------------------------------------------------------
def run_product(settings: Any, config: Any, base: str, rows: list[dict[str, Any]], stage: str = "sft",
                init_adapter: Any = None) -> tuple[dict[str, Any], Any]:
    from training.job import resolve_worker_cpus, run_stage

    config = resolve_worker_cpus(settings, config)
    started = time.perf_counter()
    result = run_stage(stage, settings, config, f"bench-{stage}-{int(time.time())}", base, rows, [],
                       lambda _event: None, init_adapter=init_adapter)
    wall = time.perf_counter() - started
    m = result.metrics
    cores = config.workers * (config.cpus_per_worker or 1)
    row: dict[str, Any] = {
        "path": f"product: Ray Train {stage.upper()}, {config.workers} worker(s) x {config.cpus_per_worker} CPU",
        "steps": int(m["step"]),
        "workers": config.workers,
        "cpus_per_worker": config.cpus_per_worker,
        "cores": cores,
        "torch_threads": m.get("torch_threads"),
        "gradient_checkpointing": config.gradient_checkpointing,
        "train_runtime_s": m["train_runtime"],
        "s_per_step": m["train_runtime"] / m["step"],
        "wall_s_including_worker_start": wall,
        "peak_rss_mb": m["peak_rss_mb"],
    }
    if stage == "sft":
        row.update(batch_size=config.batch_size, max_length=config.max_length, tokens=m.get("num_tokens"),
                   tokens_per_s=m["num_tokens"] / m["train_runtime"],
                   tokens_per_s_per_core=m["num_tokens"] / m["train_runtime"] / cores)
    else:
        row.update(batch_size=config.dpo_batch_size, gradient_accumulation_steps=config.dpo_gradient_accumulation_steps,
                   max_length=config.dpo_max_length, pairs=len(rows))
    return row, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--author", default="brandur_leach_atoms", help="corpus file name without .jsonl")
    parser.add_argument("--limit", type=int, default=120, help="documents read from the corpus")
    parser.add_argument("--steps", type=int, default=4, help="SFT steps of each throughput run")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--dpo-steps", type=int, default=2)
    parser.add_argument("--dpo-pairs", type=int, default=8)
    parser.add_argument("--dpo-compare", action="store_true", help="also DPO with the old settings (4 x 512)")
    parser.add_argument("--workers-compare", action="store_true", help="also SFT with 2 workers x 1 CPU")
    parser.add_argument("--skip-dpo", action="store_true")
    parser.add_argument("--quality", action="store_true", help="also a whole train() job with the defaults")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    import ray

    from training.config import LORA_TARGET_MODULES, TrainConfig
    from training.dataset import build_datasets
    from training.job import WORKER_ENV, _on_ray, _rows, train
    from twin.models import resolve_base_model
    from twin.settings import Settings
    from twin.store import DocumentStore

    cores = os.cpu_count() or 1
    data_dir = Path(tempfile.mkdtemp(prefix="twin-bench-train-"))
    settings = Settings(data_dir=data_dir, models_path=MODELS_DIR, _env_file=None)
    settings.train.dpo_max_pairs = args.dpo_pairs
    settings.train.dpo_max_new_tokens = 64
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    author = load_author(store, args.author, args.limit)
    base = resolve_base_model(settings)
    defaults = TrainConfig.from_settings(settings)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {cores} CPUs (shared with other work: compare within this run), "
                   "torch CPU fp32",
        "base_model": settings.base_model,
        "author": args.author,
        "documents": len(store.list_documents(store.get_author(author))),
        "defaults": defaults.model_dump(exclude={"fail_worker_once", "fail_dpo"}),
    }
    short = settings.model_copy(update={"train": settings.train.model_copy(update={"max_length": args.max_length})})
    bundle = build_datasets(store, author, short, data_dir / "bench-dataset", with_dpo=False)
    rows = _rows(bundle.splits["train"])
    report["sft_examples"] = len(rows)

    print(f"plain TRL + PEFT loop: {args.steps} steps of {args.batch_size} x {args.max_length} tokens", flush=True)
    plain = run_plain(
        base=base, rows=rows, steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
        threads=cores, learning_rate=defaults.learning_rate,
        lora={"r": defaults.lora_r, "lora_alpha": defaults.lora_alpha, "lora_dropout": defaults.lora_dropout,
              "target_modules": LORA_TARGET_MODULES},
    )
    print(json.dumps(plain), flush=True)

    ray.init(address="local", num_cpus=cores, runtime_env={"env_vars": WORKER_ENV}, configure_logging=False)
    try:
        sft_config = TrainConfig.from_settings(
            settings, max_steps=args.steps, epochs=100.0, batch_size=args.batch_size, max_length=args.max_length,
            save_steps=10_000, dpo=False,
        )
        print("product SFT (defaults: one worker, every core)", flush=True)
        product, sft_result = run_product(settings, sft_config, base, rows)
        print(json.dumps(product), flush=True)
        runs = [product]
        if args.workers_compare:
            old = sft_config.model_copy(update={"workers": 2, "cpus_per_worker": 1})
            print("product SFT, old layout (2 workers x 1 CPU)", flush=True)
            runs.append(run_product(settings, old, base, rows)[0])
            print(json.dumps(runs[-1]), flush=True)
        report["sft_throughput"] = {
            "plain": plain,
            "product": runs,
            "product_over_plain_tokens_per_s": product["tokens_per_s"] / plain["tokens_per_s"],
            "product_over_plain_tokens_per_s_per_core": product["tokens_per_s_per_core"]
            / plain["tokens_per_s_per_core"],
        }

        if not args.skip_dpo:
            from training.dataset import generate_rejected

            dpo_settings = settings.model_copy(
                update={"train": settings.train.model_copy(update={"max_length": defaults.dpo_max_length})}
            )
            dpo_bundle = build_datasets(
                store, author, dpo_settings, data_dir / "bench-dpo", with_dpo=True, model_path=base,
                rejected_fn=_on_ray(generate_rejected, sft_config.model_copy(update={"cpus_per_worker": cores})),
            )
            pairs = _rows(dpo_bundle.dpo)
            dpo_runs = []
            dpo_config = TrainConfig.from_settings(settings, dpo_max_steps=args.dpo_steps, save_steps=10_000)
            print(f"product DPO (defaults) on {len(pairs)} pairs", flush=True)
            dpo_runs.append(run_product(settings, dpo_config, base, pairs, "dpo", sft_result.checkpoint)[0])
            print(json.dumps(dpo_runs[-1]), flush=True)
            if args.dpo_compare:
                old = dpo_config.model_copy(update={"dpo_batch_size": 4, "dpo_gradient_accumulation_steps": 1,
                                                    "dpo_max_length": 512})
                print("product DPO, old settings (4 pairs per forward, 512 tokens)", flush=True)
                dpo_runs.append(run_product(settings, old, base, pairs, "dpo", sft_result.checkpoint)[0])
                dpo_runs[-1]["path"] += " (old settings)"
                print(json.dumps(dpo_runs[-1]), flush=True)
            report["dpo"] = dpo_runs

        if args.quality:
            started = time.perf_counter()
            adapter = train(store, author, settings, defaults, progress=lambda e: print(
                f"[{time.perf_counter() - started:7.1f}s] {e.stage} {e.event} {e.step}/{e.total} "
                f"{'' if e.loss is None else f'loss={e.loss:.3f}'} {e.message}", flush=True))
            m = adapter.metrics
            report["quality"] = {
                "job_wall_s": time.perf_counter() - started,
                "sft_steps": m.get("sft_step"),
                "dpo_steps": m.get("dpo_step"),
                "dpo_ran": adapter.params.get("dpo_ran"),
                "train_examples": m["dataset"]["train"]["examples"],
                "perplexity_base": m["perplexity_base"],
                "perplexity_adapter": m["perplexity_adapter"],
                "perplexity_ratio_adapter_over_base": m["perplexity_ratio"],
                "peak_rss_mb": m.get("peak_rss_mb"),
            }
    finally:
        ray.shutdown()
        store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
