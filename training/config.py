"""The one typed configuration of a training run; saved with every checkpoint and with the adapter."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from twin.settings import Settings, TrainSettings

SFT_BUDGET_SHARE = 0.75
DPO_BUDGET_END = 0.95
"""Of ``max_minutes``: SFT may run until 75% of it, DPO until 95%; the rest saves and scores the adapter."""
LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _default(name: str) -> Any:
    """The default of a field that is also a setting: ``TrainSettings`` is the one place defaults live."""
    return TrainSettings.model_fields[name].default


class TrainConfig(BaseModel):
    """Hyperparameters and run options. Defaults come from ``settings.train``; CLI flags override them."""

    model_config = ConfigDict(extra="forbid")

    workers: int = _default("workers")
    """Ray Train workers (each ``cpus_per_worker`` CPUs, or one GPU)."""
    cpus_per_worker: int | None = _default("cpus_per_worker")
    """CPUs (and torch threads) per worker; None until the job resolves it against the Ray it runs on."""
    use_gpu: bool = _default("use_gpu")
    lora_r: int = _default("lora_r")
    lora_alpha: int = _default("lora_alpha")
    lora_dropout: float = _default("lora_dropout")
    learning_rate: float = _default("learning_rate")
    epochs: float = _default("epochs")
    max_length: int = _default("max_length")
    """Tokens per example (prompt + answer); longer ones are truncated."""
    batch_size: int = _default("batch_size")
    """Examples per worker per forward pass."""
    gradient_accumulation_steps: int = _default("gradient_accumulation_steps")
    gradient_checkpointing: bool = _default("gradient_checkpointing")
    max_steps: int = _default("max_steps")
    """Cap on SFT optimizer steps: the run is ``epochs`` epochs or this many steps, whichever is fewer
    (-1: no cap; a smoke run is a small positive number)."""
    max_minutes: float | None = _default("max_minutes")
    """Wall-clock budget of the whole job; SFT stops past 75% of it, DPO past 95% (None or 0: the step caps
    alone)."""
    dpo: bool = _default("dpo")
    dpo_learning_rate: float = _default("dpo_learning_rate")
    dpo_epochs: float = _default("dpo_epochs")
    dpo_max_steps: int = _default("dpo_max_steps")
    """Cap on DPO optimizer steps, like ``max_steps``."""
    dpo_batch_size: int = _default("dpo_batch_size")
    dpo_gradient_accumulation_steps: int = _default("dpo_gradient_accumulation_steps")
    dpo_max_length: int = _default("dpo_max_length")
    dpo_max_pairs: int = _default("dpo_max_pairs")
    dpo_beta: float = _default("dpo_beta")
    code_mix: bool = _default("code_mix")
    """Add examples from the author's own commits to SFT (their held-out perplexity is reported apart)."""
    feedback_only: bool = False
    """A short DPO-only run on the inbox's preference pairs, starting from the author's active adapter (no SFT,
    no base-model generations); registered as a new version on top of it."""
    seed: int = _default("seed")
    save_steps: int = _default("save_steps")
    """Checkpoint every this many steps: a restarted worker group resumes from the last one."""
    logging_steps: int = _default("logging_steps")
    max_failures: int = _default("max_failures")
    fail_worker_once: bool = False
    """Test hook: rank 1 exits the process once, right after the first checkpoint of a fresh (not resumed)
    SFT run, to prove that Ray Train restarts the workers from that checkpoint."""
    fail_dpo: bool = False
    """Test hook: the DPO stage raises before training, to prove that the SFT adapter is still registered."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainConfig:
        train = settings.train
        values: dict[str, Any] = {
            name: getattr(train, name) for name in cls.model_fields if hasattr(train, name)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def stage_deadline(self, stage: str, started: float) -> float | None:
        """When (``time.time()``) a stage of a job that started at `started` stops taking steps."""
        if self.max_minutes is None or self.max_minutes <= 0:
            return None
        share = SFT_BUDGET_SHARE if stage == "sft" else DPO_BUDGET_END
        return started + share * self.max_minutes * 60

    def stage_steps(self, stage: str, examples: int, workers: int | None = None) -> int:
        """Optimizer steps a stage runs on ``examples`` rows: its epochs, capped by its max steps."""
        sft = stage == "sft"
        if sft:
            per_step = self.batch_size * self.gradient_accumulation_steps
        else:
            per_step = self.dpo_batch_size * self.dpo_gradient_accumulation_steps
        per_step *= workers or self.workers
        epochs = self.epochs if sft else self.dpo_epochs
        cap = self.max_steps if sft else self.dpo_max_steps
        steps = max(1, math.ceil(epochs * math.ceil(max(examples, 1) / per_step)))
        return min(steps, cap) if cap > 0 else steps
