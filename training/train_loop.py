"""The function every Ray Train worker runs: TRL SFT (or DPO on top of the SFT adapter) with a PEFT LoRA.

Run through :func:`training.job.train` (``twin train AUTHOR``); a smoke run is ``twin train AUTHOR
--max-steps 2``. Read top to bottom: restore -> load model -> build trainer -> train -> final report.

Ray Train sets up ``torch.distributed`` (gloo on CPU, NCCL on GPU) before this runs, and the Hugging Face
Trainer inside TRL picks it up, so each worker trains on its own shard and gradients are all-reduced.
Checkpoints: Ray Train's ``RayTrainReportCallback`` hands each Hugging Face checkpoint (LoRA weights,
optimizer, scheduler, trainer state) to ``ray.train.report``; after a worker dies, Ray Train restarts the group
(``FailureConfig``) and :func:`restore_checkpoint` resumes from the last one. The final report carries the
adapter alone under ``adapter/``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from training.config import LORA_TARGET_MODULES, TrainConfig

if TYPE_CHECKING:
    from ray.train import Checkpoint
    from ray.util.queue import Queue
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

Stage = Literal["sft", "dpo"]
HF_CHECKPOINT_DIR = "checkpoint"  # RayTrainReportCallback.CHECKPOINT_NAME: where it puts the HF checkpoint
ADAPTER_DIR = "adapter"
CONFIG_FILE = "train_config.json"


@dataclass
class WorkerJob:
    """Everything a worker needs, passed as ``train_loop_config={"job": WorkerJob(...)}``.

    Rows travel with the job (an author's corpus is small), so workers on other nodes need no shared disk.
    """

    stage: Stage
    base_model_path: str
    config: TrainConfig
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] = field(default_factory=list)
    init_adapter: Checkpoint | None = None
    """DPO starts from the SFT result's checkpoint (its ``adapter/`` folder)."""
    progress: Queue | None = None
    """Rank 0 puts progress events here for the driver (a Ray queue actor)."""
    deadline: float | None = None
    """``time.time()`` past which the stage takes no further optimizer step (the job's time budget)."""


# setup helpers ---------------------------------------------------------------------------------------
def use_threads(config: TrainConfig) -> int:
    """One torch (OpenMP) thread per CPU the worker reserved in Ray: Ray exports OMP_NUM_THREADS for the
    worker, but torch may have been imported (and sized its pool) before, so set it explicitly."""
    import torch

    threads = max(1, config.cpus_per_worker or int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return threads


def restore_checkpoint(local_root: Path) -> tuple[str | None, int]:
    """Copy the last reported checkpoint (if this is a restart) to local disk: (HF checkpoint dir, step)."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None, 0
    with checkpoint.as_directory() as path:
        source = Path(path) / HF_CHECKPOINT_DIR
        if not source.exists():
            return None, 0
        target = local_root / "resume"
        shutil.copytree(source, target, dirs_exist_ok=True)
    state = json.loads((target / "trainer_state.json").read_text())
    return str(target), int(state["global_step"])


def load_model(job: WorkerJob, local_root: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model in fp32 (bf16 is ~15x slower on CPUs without bf16 units); for DPO, the SFT adapter on it,
    trainable. With ``ref_model=None`` TRL then freezes a copy of that adapter as the DPO reference (the SFT
    model, as in the DPO paper), so no second model is loaded."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(job.base_model_path)
    dtype = torch.bfloat16 if job.config.use_gpu and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(job.base_model_path, dtype=dtype)
    if job.stage == "dpo":
        if job.init_adapter is None:
            raise ValueError("DPO needs the SFT adapter checkpoint")
        adapter_dir = local_root / "sft_adapter"
        with job.init_adapter.as_directory() as path:
            shutil.copytree(Path(path) / ADAPTER_DIR, adapter_dir, dirs_exist_ok=True)
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    return model, tokenizer


def build_trainer(
    job: WorkerJob,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    import torch.distributed as dist
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    cfg = job.config
    sft = job.stage == "sft"
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    batch_size = cfg.batch_size if sft else cfg.dpo_batch_size
    accumulation = cfg.gradient_accumulation_steps if sft else cfg.dpo_gradient_accumulation_steps
    common: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        # always explicit: the stage's epochs, capped by its max steps (see TrainConfig.stage_steps)
        max_steps=cfg.stage_steps(job.stage, len(job.train_rows), world),
        max_length=cfg.max_length if sft else cfg.dpo_max_length,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
        use_cpu=not cfg.use_gpu,
        bf16=cfg.use_gpu,
        ddp_backend="nccl" if cfg.use_gpu else "gloo",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )
    train_dataset = Dataset.from_list(job.train_rows)
    if sft:
        args = SFTConfig(
            **common,
            learning_rate=cfg.learning_rate,
            completion_only_loss=True,  # loss on the author's text, never on the instruction
            # batches of similar lengths: on a CPU every padding token costs as much as a real one
            train_sampling_strategy="group_by_length",
        )
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=LORA_TARGET_MODULES,
            task_type="CAUSAL_LM",
        )
        return SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=Dataset.from_list(job.eval_rows) if job.eval_rows else None,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
        )
    args = DPOConfig(
        **common,
        learning_rate=cfg.dpo_learning_rate,
        beta=cfg.dpo_beta,
    )
    return DPOTrainer(
        model=model,
        ref_model=None,  # reference = a frozen copy of the SFT adapter on the same base weights
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def _scalars(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def make_callbacks(job: WorkerJob, rank: int, start_step: int) -> list[TrainerCallback]:
    """Ray Train's own `RayTrainReportCallback` reports each Hugging Face checkpoint (as ``checkpoint/``,
    which :func:`restore_checkpoint` reads) with the logged metrics; ours relays progress to the driver."""
    from ray.train.huggingface.transformers import RayTrainReportCallback
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self.saved_step: int | None = None

        def _progress(self, event: dict[str, Any]) -> None:
            if rank == 0 and job.progress is not None:
                try:
                    job.progress.put_nowait({"stage": job.stage, **event})
                except Exception:  # noqa: BLE001 - a full or gone progress queue must never stop training
                    pass

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._progress({"event": "begin", "step": state.global_step, "total": state.max_steps,
                            "start_step": start_step})

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            metrics = _scalars(logs or {})
            self._progress({"event": "log", "step": state.global_step, "total": state.max_steps,
                            "start_step": start_step, **metrics})
            if (
                job.config.fail_worker_once
                and job.stage == "sft"
                and rank == 1
                and start_step == 0
                and self.saved_step is not None
                and state.global_step > self.saved_step
            ):
                # Every rank's checkpoint report (RayTrainReportCallback.on_save) was a barrier that rank 0
                # passed after uploading; give the controller a moment to register it, then die like an
                # OOM-killed process.
                time.sleep(3)
                os._exit(1)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.saved_step = state.global_step
            self._progress({"event": "checkpoint", "step": state.global_step, "total": state.max_steps})

    class TimeBudget(TrainerCallback):
        """Ends training at the first optimizer step that finishes past `deadline`, on every rank at once.

        Each rank reads its own clock, so they agree through an all-reduce (max): a rank that stopped a step
        before the others would leave them waiting in the next gradient all-reduce for ever.
        """

        def __init__(self, deadline: float) -> None:
            self.deadline = deadline

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            import torch
            import torch.distributed as dist

            over = time.time() >= self.deadline
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                flag = torch.tensor([int(over)], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                over = bool(flag.item())
            if over:
                control.should_training_stop = True

    callbacks: list[TrainerCallback] = [ProgressCallback(), RayTrainReportCallback()]
    if job.deadline is not None:
        callbacks.insert(0, TimeBudget(job.deadline))
    return callbacks


# the loop ----------------------------------------------------------------------------------------------
def train_loop(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point (``TorchTrainer(train_loop, train_loop_config={"job": WorkerJob(...)})``)."""
    import ray.train
    import torch
    from ray.train import Checkpoint
    from ray.train.huggingface.transformers import prepare_trainer
    from transformers import set_seed

    job: WorkerJob = loop_config["job"]
    rank = ray.train.get_context().get_world_rank()
    use_threads(job.config)
    set_seed(job.config.seed)
    with tempfile.TemporaryDirectory(prefix=f"twin-{job.stage}-rank{rank}-") as tmp:
        local_root = Path(tmp)
        resume_from, start_step = restore_checkpoint(local_root)
        model, tokenizer = load_model(job, local_root)
        if job.stage == "dpo" and job.config.fail_dpo:
            raise RuntimeError("DPO failed on purpose (TrainConfig.fail_dpo test hook)")
        callbacks = make_callbacks(job, rank, start_step)
        trainer = prepare_trainer(build_trainer(job, model, tokenizer, local_root / "hf", callbacks))

        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume_from)
        train_seconds = time.perf_counter() - started
        losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        final = {
            "stage": job.stage,
            "step": trainer.state.global_step,
            "start_step": start_step,
            "train_loss": float(output.training_loss),
            "first_loss": float(losses[0]) if losses else float("nan"),
            "last_loss": float(losses[-1]) if losses else float("nan"),
            "train_seconds": train_seconds,
            "steps_this_attempt": trainer.state.global_step - start_step,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
            "torch_threads": float(torch.get_num_threads()),
            "world_size": float(ray.train.get_context().get_world_size()),
        }
        num_tokens = [log["num_tokens"] for log in trainer.state.log_history if "num_tokens" in log]
        if num_tokens:
            final["num_tokens"] = float(num_tokens[-1])
            final["tokens_per_s"] = final["num_tokens"] / max(train_seconds, 1e-9)
        for key, value in _scalars(trainer.state.log_history[-1]).items():
            final.setdefault(key, value)  # train_runtime, train_samples_per_second, ...
        # Only the time budget ends a stage before its planned steps (max_steps is its epochs, capped).
        final["stopped_by_budget"] = float(trainer.state.global_step < trainer.state.max_steps)
        final["planned_steps"] = float(trainer.state.max_steps)
        for log in trainer.state.log_history:  # DPO: rewards/accuracies, margins of the last logged step
            final.update({k: v for k, v in _scalars(log).items() if k.startswith("rewards/")})
        if job.stage == "sft" and trainer.eval_dataset is not None:
            final.update(_scalars(trainer.evaluate()))  # eval_loss on the validation documents
            final["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        if rank == 0:
            out = local_root / "final"
            trainer.model.save_pretrained(str(out / ADAPTER_DIR))
            tokenizer.save_pretrained(str(out / ADAPTER_DIR))
            (out / CONFIG_FILE).write_text(job.config.model_dump_json(indent=2))
            ray.train.report(final, checkpoint=Checkpoint.from_directory(str(out)))
        else:
            ray.train.report(final, checkpoint=None)
