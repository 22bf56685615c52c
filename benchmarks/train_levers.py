"""Which training lever moves the voice per minute of CPU: held-out perplexity after each step budget.

Issue 10 asks what moves the twin per CPU minute. Each lever is the product's own SFT trainer
(`training.train_loop.build_trainer`, same LoRA targets, completion-only loss, TrainSettings defaults)
with one setting changed, on the same author, the same document split and the same step budgets. After
every `--eval-every` optimizer steps the run scores the held-out documents' perplexity (the same
completion-only measure `twin train` reports); evaluation time is not counted as training time.

    python -m benchmarks.train_levers --author chris_wellons --docs 100 --steps 24 --eval-every 8

Writes benchmarks/results/train_levers.json: per lever, (train seconds, perplexity ratio) at each budget,
and the ratio reached per CPU minute. Quality numbers do not depend on machine load; seconds do, so
compare seconds only within one run (`load_avg` is recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
RESULTS = ROOT / "benchmarks" / "results" / "train_levers.json"

# One setting changed per lever; "defaults" is `twin train` as shipped.
LEVERS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "lr_5e-4": {"learning_rate": 5e-4},
    "lr_1e-3": {"learning_rate": 1e-3},
    "lr_2e-3": {"learning_rate": 2e-3},
    "rank_64": {"lora_r": 64, "lora_alpha": 128},
    "max_length_256": {"max_length": 256},
}


def load_documents(author: str, limit: int) -> list[Any]:
    from ingestion.clean import clean_markdown
    from twin.domain import Document, Kind, Platform

    path = CORPORA / f"{author}.jsonl"
    if not path.exists():
        sys.exit(f"no corpus at {path}: this benchmark reads ../shared/corpora")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: hashlib.sha256(r["path"].encode()).hexdigest())
    documents = []
    now = datetime.now(UTC)
    for index, row in enumerate(rows[:limit]):
        text = clean_markdown(row["text"])
        if len(text.split()) < 60:
            continue
        documents.append(Document(
            id=index + 1, author_id=1, source_id=None, url=f"https://corpus.local/{row['path']}",
            platform=Platform.blog, kind=Kind.article, title=row.get("title"), published_at=None, version=1,
            content_hash=hashlib.sha256(text.encode()).hexdigest(), raw_text=row["text"], clean_text=text,
            fetched_at=now,
        ))
    return documents


def examples_for(documents: list[Any], max_length: int, tokenizer: Any) -> dict[str, list[Any]]:
    from training.dataset import KeyPhrases, assign_splits, build_sft_examples
    from twin.settings import Settings

    settings = Settings()
    settings.train.max_length = max_length
    phrases = KeyPhrases([d.clean_text for d in documents])
    splits = assign_splits(documents, settings.train.seed, 0.0, 0.2)
    return {
        "train": build_sft_examples(splits["train"], settings, tokenizer, phrases),
        "test": build_sft_examples(splits["test"], settings, tokenizer, phrases),
    }


def run_lever(name: str, overrides: dict[str, Any], base_model: str, rows: list[dict[str, Any]],
              held_out: list[Any], steps: int, eval_every: int, eval_max_length: int,
              base_nll: tuple[float, int]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from training.config import TrainConfig
    from training.perplexity import completion_nll
    from training.train_loop import WorkerJob, build_trainer

    config = TrainConfig(**{"workers": 1, "cpus_per_worker": torch.get_num_threads(), "max_steps": steps,
                            "epochs": 100.0, "save_steps": 10_000, "dpo": False, **overrides})
    job = WorkerJob(stage="sft", base_model_path=base_model, config=config, train_rows=rows)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    points: list[dict[str, Any]] = []
    clock = {"train_cpu_s": 0.0, "since": time.process_time()}

    class Evaluate(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if state.global_step % eval_every and state.global_step != steps:
                return
            clock["train_cpu_s"] += time.process_time() - clock["since"]
            was_training = model.training
            nll, tokens = completion_nll(model, tokenizer, held_out, eval_max_length)
            model.train(was_training)
            ratio = math.exp(nll / tokens) / math.exp(base_nll[0] / base_nll[1])
            points.append({"step": state.global_step, "train_cpu_s": round(clock["train_cpu_s"], 1),
                           "perplexity": round(math.exp(nll / tokens), 3), "ratio": round(ratio, 4)})
            print(f"  {name}: step {state.global_step} ratio {ratio:.3f} after {clock['train_cpu_s']:.0f} CPU s",
                  flush=True)
            clock["since"] = time.process_time()

    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(job, model, tokenizer, Path(out), [Evaluate()])
        trainer.train()
    last = points[-1]
    return {
        "overrides": overrides,
        "points": points,
        "final_ratio": last["ratio"],
        "ratio_drop_per_cpu_minute": round((1 - last["ratio"]) / max(last["train_cpu_s"] / 60, 1e-9), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--author", default="chris_wellons")
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--eval-every", type=int, default=8)
    parser.add_argument("--eval-examples", type=int, default=24)
    parser.add_argument("--levers", default=",".join(LEVERS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    unknown = [name for name in args.levers.split(",") if name not in LEVERS]
    if unknown:
        parser.error(f"unknown lever(s) {unknown}; choose from {', '.join(LEVERS)}")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.perplexity import completion_nll
    from twin.models import resolve_base_model
    from twin.settings import Settings

    base_model = resolve_base_model(Settings())
    # build_trainer asks for gloo DDP, as each Ray Train worker does: a one-process group stands in
    import socket

    import torch.distributed as dist

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    documents = load_documents(args.author, args.docs)
    default_length = Settings().train.max_length
    by_length: dict[int, dict[str, list[Any]]] = {}
    held_out = examples_for(documents, default_length, tokenizer)["test"][: args.eval_examples]
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    base_nll = completion_nll(base, tokenizer, held_out, default_length)
    del base
    print(f"{len(documents)} documents, {len(held_out)} held-out passages, base perplexity "
          f"{math.exp(base_nll[0] / base_nll[1]):.2f}", flush=True)

    results: dict[str, Any] = {}
    for name in args.levers.split(","):
        overrides = LEVERS[name]
        length = overrides.get("max_length", default_length)
        if length not in by_length:
            by_length[length] = examples_for(documents, length, tokenizer)
        rows = [ex.model_dump(include={"prompt", "completion"}) for ex in by_length[length]["train"]]
        results[name] = run_lever(name, overrides, base_model, rows, held_out, args.steps, args.eval_every,
                                  default_length, base_nll)
        results[name]["train_examples"] = len(rows)
        args.out.write_text(json.dumps(report(args, documents, held_out, base_nll, results), indent=1) + "\n")
    print(json.dumps({k: (v["final_ratio"], v["ratio_drop_per_cpu_minute"]) for k, v in results.items()}))


def report(args: argparse.Namespace, documents: list[Any], held_out: list[Any], base_nll: tuple[float, int],
           results: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "load_avg": os.getloadavg(),
        "author": args.author,
        "documents": len(documents),
        "held_out_passages": len(held_out),
        "base_perplexity": round(math.exp(base_nll[0] / base_nll[1]), 3),
        "steps": args.steps,
        "levers": results,
    }


if __name__ == "__main__":
    main()
