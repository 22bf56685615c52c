"""`twin train AUTHOR` and `twin adapters ...`: fine-tune a twin, then list, activate and roll back versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.context import ServiceClient, console, open_store, print_json, service_client, settings, user_errors
from twin.domain import Adapter, NotFound


class _DefaultListGroup(typer.core.TyperGroup):
    """`twin adapters AUTHOR` means `twin adapters list AUTHOR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


adapters_app = typer.Typer(
    cls=_DefaultListGroup,
    help="A twin's LoRA adapter versions: `twin adapters AUTHOR` lists them; activate or roll back.",
    no_args_is_help=True,
)


def train(
    author: str = typer.Argument(..., help="The author to train a twin of."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Ray Train workers (default from settings)."),
    no_dpo: bool = typer.Option(False, "--no-dpo", help="Stop after SFT (skip the DPO stage)."),
    max_steps: int | None = typer.Option(
        None, "--max-steps",
        help="Cap on SFT optimizer steps (a small number is a smoke run; -1: no cap, run the full epochs). "
        "Default from settings (TWIN_TRAIN__MAX_STEPS).",
    ),
    dpo_max_steps: int | None = typer.Option(
        None, "--dpo-max-steps", help="Cap on DPO optimizer steps (-1: no cap). Default from settings."
    ),
    dpo_pairs: int | None = typer.Option(
        None, "--dpo-pairs",
        help="Most DPO preference pairs (each costs one base-model generation). Default from settings.",
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="SFT epochs (capped by --max-steps)."),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0,
        help="Wall-clock budget of the whole job: SFT stops at its first step past 75% of it, DPO past 95%, "
        "keeping what they learned (0: none, the step caps alone). Default from settings "
        "(TWIN_TRAIN__MAX_MINUTES, 60).",
    ),
    gpu: bool | None = typer.Option(None, "--gpu/--cpu", help="Train on GPUs (NCCL) or CPUs (gloo)."),
    activate: bool = typer.Option(True, "--activate/--no-activate", help="Make the new adapter the active one."),
    feedback_only: bool = typer.Option(
        False, "--feedback-only",
        help="A short DPO-only run on top of AUTHOR's active adapter, on the inbox's preference pairs alone "
        "(your edits, and approved-over-discarded drafts of one run): no SFT and no base-model answers. It "
        "registers a new version (roll back with `twin adapters rollback`). Cap it with --dpo-max-steps.",
    ),
    with_code: bool = typer.Option(
        False, "--with-code",
        help="Also learn AUTHOR's own code: the lines their commits added in the repos they ingested (commit "
        "message -> code, docstring -> function; who they are in commits: TWIN_CRAWL__GIT_IDENTITIES). Its "
        "held-out perplexity is reported apart from the prose's.",
    ),
    resume: str | None = typer.Option(
        None, "--resume", metavar="JOB",
        help="Continue training job JOB, whose process died, from its last checkpoint (its own options; "
        "the flags above are ignored).",
    ),
    force: bool = typer.Option(False, "--force", help="With --resume: also a job that failed on an error."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered adapter as JSON."),
) -> None:
    """Fine-tune a LoRA twin of AUTHOR (SFT on their writing, then DPO) with Ray Train, and register it.

    Example: `twin train juno` (at most about an hour: --max-minutes 60 by default) or `twin train juno
    --max-steps 50 --dpo-max-steps 8` for a quicker one. Held-out perplexity of unseen documents, base
    model vs adapter, is printed at the end and stored with the adapter. After editing, approving and
    discarding drafts in the inbox, `twin train juno --feedback-only` teaches the active adapter those
    preferences in a few minutes.

    While `twin serve` runs, the service trains (on its Ray: one Ray per machine) and this command follows
    the job. With RAY_ADDRESS (or TWIN_SERVE__RAY_ADDRESS) set, training runs on that cluster.
    """
    from training.config import TrainConfig
    from training.job import TrainProgress
    from training.job import resume as resume_training
    from training.job import train as run_training

    config_settings = settings()
    with user_errors(), open_store() as store:
        feedback = store.count_feedback_pairs(store.get_author(author))
        if not as_json:
            console.print(f"inbox preferences for DPO: {feedback['edit']} edits, {feedback['choice']} "
                          "approved-over-discarded choices")
        config = TrainConfig.from_settings(
            config_settings,
            workers=workers,
            max_steps=max_steps,
            dpo_max_steps=dpo_max_steps,
            dpo_max_pairs=dpo_pairs,
            epochs=epochs,
            max_minutes=max_minutes,
            use_gpu=gpu,
            dpo=False if no_dpo else None,
            code_mix=True if with_code else None,
            feedback_only=True if feedback_only else None,
        )
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        # A step takes seconds to minutes on a CPU: estimate the time left from the stage's whole history
        # (rich's default 30 s window would hold one or two steps).
        with Progress(*columns, console=console, transient=as_json, speed_estimate_period=3600) as bar:
            tasks: dict[str, Any] = {}
            totals: dict[str, int] = {}

            def on_progress(event: TrainProgress) -> None:
                if event.stage not in tasks:
                    for stage, task_id in tasks.items():  # a new stage means the earlier ones are done
                        done = totals.get(stage) or 1
                        bar.update(task_id, completed=done, total=done)
                    if event.stage == "done":
                        return
                    tasks[event.stage] = bar.add_task(event.stage.upper(), total=None, info="")
                if event.total:
                    totals[event.stage] = event.total
                info = f"loss {event.loss:.3f}" if event.loss is not None else event.message
                if event.event == "failed":
                    console.print(f"[yellow]{event.message}[/yellow]")
                    info = "failed"
                if event.event == "begin" and event.step:
                    # resumed from a checkpoint: restart the ETA from here rather than count the jump as speed
                    bar.reset(tasks[event.stage], total=totals.get(event.stage), completed=event.step)
                bar.update(
                    tasks[event.stage], completed=event.step, total=totals.get(event.stage), info=info
                )

            client = service_client()
            if client is not None:
                with client:
                    if not as_json:
                        console.print(f"training in the running service ({config_settings.resolved_service_url})")
                    if resume:
                        path = f"/api/authors/{author}/train/{resume}/resume"
                        job = client.check(client.post(path, params={"force": force}))
                    else:
                        body = {"config": config.model_dump(mode="json"), "activate": activate}
                        job = client.check(client.post(f"/api/authors/{author}/train", json=body))
                    adapter = follow_training(client, job["id"], on_progress)
            elif resume:
                adapter = resume_training(store, resume, config_settings, on_progress, force=force)
            else:
                adapter = run_training(
                    store, author, config_settings, config, progress=on_progress, activate=activate
                )
    if as_json:
        print_json(adapter)
        return
    m = adapter.metrics
    if not adapter.params.get("dpo_ran", True) and adapter.params.get("dpo_error"):
        error = adapter.params["dpo_error"]
        console.print(f"[yellow]DPO did not run ({error}); this adapter is SFT only.[/yellow]")
    for stage in ("sft", "dpo"):
        if m.get(f"{stage}_stopped_by_budget"):
            console.print(f"[yellow]{stage.upper()} stopped at step {int(m[f'{stage}_step'])} of "
                          f"{int(m[f'{stage}_planned_steps'])}: the time budget (--max-minutes) ran out.[/yellow]")
    losses = (
        f"DPO on {m.get('feedback_pairs', 0)} inbox preferences over v{m.get('base_adapter_version')}, "
        f"loss {m['train_loss']:.3f}" if m.get("dpo_only") else
        f"train loss {m['train_loss']:.3f}, validation loss {m['validation_loss']:.3f}"
    )
    console.print(
        f"Registered [bold]{author} v{adapter.version}[/bold]{' (active)' if adapter.active else ''} at {adapter.path}\n"
        f"held-out perplexity: base {m['perplexity_base']:.2f} -> adapter {m['perplexity_adapter']:.2f} "
        f"(ratio {m['perplexity_ratio']:.3f}); {losses}"
    )
    if "perplexity_code_base" in m:
        console.print(
            f"held-out code perplexity: base {m['perplexity_code_base']:.2f} -> adapter "
            f"{m['perplexity_code_adapter']:.2f} (ratio {m['perplexity_code_ratio']:.3f}, "
            f"{m['perplexity_code_examples']} examples)"
        )


def follow_training(client: ServiceClient, job_id: str, on_progress: Callable[[Any], None]) -> Adapter:
    """Follow a training job of the service, relaying its progress; the adapter it registered."""
    from training.job import TrainProgress

    seen: list[dict[str, Any]] = []

    def relay(job: dict[str, Any]) -> None:
        event = TrainProgress.model_validate(job["progress"]) if "stage" in job["progress"] else None
        if event is not None and (not seen or seen[-1] != event.model_dump()):
            seen.append(event.model_dump())
            on_progress(event)

    job = client.wait_for_job(job_id, relay)
    on_progress(TrainProgress(stage="done", event="end"))
    return Adapter.model_validate(job["result"])


def _adapter_table(adapters: list[Adapter]) -> Table:
    table = Table("version", "active", "created", "base model", "ppl base", "ppl adapter", "ratio", "dataset")
    for a in adapters:
        m = a.metrics
        table.add_row(
            f"v{a.version}",
            "*" if a.active else "",
            f"{a.created_at:%Y-%m-%d %H:%M}",
            a.base_model,
            f"{m.get('perplexity_base', float('nan')):.2f}",
            f"{m.get('perplexity_adapter', float('nan')):.2f}",
            f"{m.get('perplexity_ratio', float('nan')):.3f}",
            a.dataset_hash[:12],
        )
    return table


@adapters_app.command("list")
def list_adapters(
    author: str = typer.Argument(..., help="Whose adapters."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List AUTHOR's adapter versions (the active one is starred)."""
    with user_errors(), open_store() as store:
        adapters = store.list_adapters(store.get_author(author))
    if as_json:
        print_json([a.model_dump(mode="json") for a in adapters])
        return
    if not adapters:
        console.print(f"{author} has no adapters yet. Train one with `twin train {author}`.")
        return
    console.print(_adapter_table(adapters))


@adapters_app.command("activate")
def activate(
    author: str = typer.Argument(..., help="Whose adapter."),
    version: str = typer.Argument(..., help="Version number, e.g. `3` or `v3`."),
) -> None:
    """Make VERSION the adapter the twin uses."""
    with user_errors(), open_store() as store:
        try:
            number = int(version.lstrip("vV"))
        except ValueError:
            raise NotFound(f"{version!r} is not a version number (e.g. 3 or v3).") from None
        adapter = store.activate_adapter(store.get_author(author), number)
    console.print(f"{author} now uses adapter v{adapter.version}.")


@adapters_app.command("rollback")
def rollback(author: str = typer.Argument(..., help="Whose adapter.")) -> None:
    """Activate the version before the active one."""
    with user_errors(), open_store() as store:
        record = store.get_author(author)
        adapters = store.list_adapters(record)
        active = next((a for a in adapters if a.active), None)
        if active is None:
            raise NotFound(f"{author} has no active adapter to roll back from.")
        earlier = [a for a in adapters if a.version < active.version]
        if not earlier:
            raise NotFound(f"v{active.version} is {author}'s first adapter; there is nothing to roll back to.")
        adapter = store.activate_adapter(record, earlier[-1].version)
    console.print(f"{author} rolled back from v{active.version} to v{adapter.version}.")


def register(app: typer.Typer) -> None:
    """Add `train` and the `adapters` group to the root `twin` app."""
    app.command("train")(train)
    app.add_typer(adapters_app, name="adapters")
