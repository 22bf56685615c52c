"""`twin eval AUTHOR`: how well the twin writes like the author on documents it never saw, as a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.context import console, open_ingestion, print_json, user_errors

VARIANT_HELP = "base, base_retrieval, adapter, adapter_retrieval, agent (comma-separated or repeated; default all)"


def _parse_variants(values: list[str] | None) -> list[str] | None:
    from evals.variants import VARIANTS

    if not values:
        return None
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise typer.BadParameter(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(chosen))


def eval_command(
    author: str = typer.Argument(..., help="The author whose twin to evaluate (needs an active adapter)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Report folder (default: <data dir>/reports/AUTHOR/<timestamp>)."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="Held-out documents to use (default: all)."),
    variants: list[str] | None = typer.Option(None, "--variants", "-v", help=VARIANT_HELP),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Length cap of every answer (default: TWIN_SERVE__MAX_NEW_TOKENS)."
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed of the model variants."),
    opik: bool | None = typer.Option(
        None, "--opik/--no-opik", help="Log an Opik experiment (default: when Opik is configured)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of the table."),
) -> None:
    """Evaluate AUTHOR's twin on held-out documents and write report.md, report.json and PNG plots.

    Each held-out document's instruction (from the training split) is answered five ways: the base model,
    base + retrieval, the adapter, adapter + retrieval, and the full agent with critique. Every answer is
    scored for style (P(author) from a classifier trained on the author's training documents), stylometry,
    grounding, platform rules, privacy and copying; held-out perplexity compares base and adapter.

    Example: `twin eval brandur --limit 10 --out ./brandur-report`.
    """
    from evals.report import EvalOptions, evaluate, headline

    chosen = _parse_variants(variants)
    with user_errors():
        options = EvalOptions(
            limit=limit,
            max_new_tokens=max_new_tokens,
            seed=seed,
            opik=opik,
            **({"variants": chosen} if chosen else {}),
        )
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with open_ingestion() as ingestion, Progress(*columns, console=console, transient=as_json) as bar:
            tasks: dict[str, Any] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done, total=total or None)

            report = evaluate(ingestion, author, options, out, on_progress)
    if as_json:
        print_json(report)
        return
    table = Table("variant", "style", "stylometry", "grounding", "rules", "privacy", "copying", "passed", "words",
                  title=f"{report.author}: {len(report.items)} held-out documents, adapter v{report.adapter_version}")
    from evals.report import REFERENCE, VARIANT_LABELS

    for group in [*report.variants, REFERENCE]:
        means = report.means[group]
        label = VARIANT_LABELS.get(group, "author (held-out text)")
        table.add_row(label, *("n/a" if means.get(m) is None else f"{means[m]:.3f}" for m in
                               ("style", "stylometry", "grounding", "rules", "privacy", "copying", "passed")),
                      "n/a" if means.get("words") is None else f"{means['words']:.0f}")
    console.print(table)
    top = headline(report)
    console.print(f"[bold]Agent vs base:[/bold] {top.verdict}.")
    if report.perplexity:
        p = report.perplexity
        console.print(f"Held-out perplexity: base {p.base:.2f} -> adapter {p.adapter:.2f} (ratio {p.ratio:.3f}).")
    console.print(f"Report: {report.out_dir / 'report.md' if report.out_dir else '(not written)'}")


def register(app: typer.Typer) -> None:
    """Add `eval` to the root `twin` app."""
    app.command("eval")(eval_command)
