"""The one typed configuration of a training run; saved with every checkpoint and with the adapter."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from twin.settings import Settings

LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainConfig(BaseModel):
    """Hyperparameters and run options. Defaults come from ``settings.train``; CLI flags override them."""

    model_config = ConfigDict(extra="forbid")

    workers: int = 2
    """Ray Train workers (one CPU, or one GPU, each)."""
    use_gpu: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_length: int = 512
    """Tokens per example (prompt + answer); longer ones are truncated."""
    batch_size: int = 4
    """Examples per worker per step."""
    max_steps: int = -1
    """SFT optimizer steps; -1 runs ``epochs`` epochs (the smoke mode is a small positive number)."""
    dpo: bool = True
    dpo_learning_rate: float = 5e-6
    dpo_max_steps: int = -1
    dpo_beta: float = 0.1
    seed: int = 42
    save_steps: int = 10
    """Checkpoint every this many steps: a restarted worker group resumes from the last one."""
    logging_steps: int = 1
    max_failures: int = 2
    fail_worker_once: bool = False
    """Test hook: rank 1 exits the process once, right after the first checkpoint of a fresh (not resumed)
    SFT run, to prove that Ray Train restarts the workers from that checkpoint."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainConfig:
        train = settings.train
        values: dict[str, Any] = {
            name: getattr(train, name) for name in cls.model_fields if hasattr(train, name)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
