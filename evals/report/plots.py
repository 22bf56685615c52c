"""The report's PNG plots (matplotlib's object API, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evals.report.schemas import METRIC_LABELS, METRICS, REFERENCE, EvalReport, group_label

if TYPE_CHECKING:
    pass


def plot_report(report: EvalReport, out_dir: Path) -> dict[str, str]:
    """PNG plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend state)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [*report.variants, REFERENCE]
    files: dict[str, str] = {}

    metrics = [m for m in METRICS if m != "passed"]
    fig = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    x = np.arange(len(metrics))
    for i, group in enumerate(groups):
        means = [report.summary[group][m].mean for m in metrics]
        stds = [report.summary[group][m].std for m in metrics]
        ax.bar(
            x + (i - (len(groups) - 1) / 2) * width,
            [v if v is not None else 0.0 for v in means],
            width,
            yerr=[s if s is not None else 0.0 for s in stds],
            capsize=2,
            label=group_label(group),
            hatch="//" if group == REFERENCE else None,
            alpha=0.9,
        )
    ax.set_xticks(x, [METRIC_LABELS[m] for m in metrics], rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean score (higher is better)")
    ax.set_title(f"{report.author}: mean score per metric and variant ({len(report.items)} held-out documents)")
    fig.legend(loc="outside lower center", ncols=len(groups), fontsize=8)
    fig.savefig(out_dir / "scores_by_variant.png", dpi=110)
    files["scores by variant"] = "scores_by_variant.png"

    fig = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    data = [
        [o.scores["style"] for o in report.outputs if o.variant == group and o.scores.get("style") is not None]
        for group in groups
    ]
    ax.boxplot([d or [0.0] for d in data], tick_labels=[group_label(g) for g in groups], showmeans=True)
    for i, values in enumerate(data, 1):
        ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, s=10, alpha=0.6)
    ax.axhline(report.settings["style_threshold"], linestyle="--", linewidth=1, color="grey")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(author | text)")
    ax.set_title("Style score per output")
    ax.tick_params(axis="x", labelrotation=15)
    fig.savefig(out_dir / "style_distribution.png", dpi=110)
    files["style distribution"] = "style_distribution.png"

    if report.perplexity:
        fig = Figure(figsize=(5, 4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        values = [report.perplexity.base, report.perplexity.adapter]
        bars = ax.bar(["base model", f"adapter v{report.adapter_version}"], values, color=["#999999", "#3b7dd8"])
        ax.bar_label(bars, fmt="%.2f")
        ax.set_ylabel("perplexity of held-out text (lower is better)")
        ax.set_title(f"Held-out perplexity (ratio {report.perplexity.ratio:.3f})")
        fig.savefig(out_dir / "perplexity.png", dpi=110)
        files["held-out perplexity"] = "perplexity.png"
    return files
