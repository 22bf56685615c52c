"""report.md and report.json: the tables a person reads, written beside the plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evals.report.plots import plot_report
from evals.report.schemas import METRIC_LABELS, METRICS, REFERENCE, EvalReport, group_label
from evals.report.scoring import headline

if TYPE_CHECKING:
    pass


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(report: EvalReport, plots: dict[str, str]) -> str:
    top = headline(report)
    groups = [*report.variants, REFERENCE]
    lines = [
        f"# Twin evaluation: {report.author}",
        "",
        f"- created: {report.created_at:%Y-%m-%d %H:%M} UTC",
        f"- adapter: v{report.adapter_version} ({report.adapter_path}) on base model `{report.base_model}`",
        f"- held-out documents: {len(report.items)} (test split, {report.data_source.replace('_', ' ')})",
        f"- style classifier: char n-gram TF-IDF + logistic regression, trained on "
        f"{report.classifier.get('author_passages')} passages of the author's TRAIN documents vs "
        f"{report.classifier.get('generic_passages')} generic ones ({report.generic_source.replace('_', ' ')})",
        f"- generation: max {report.settings['max_new_tokens']} new tokens, temperature {report.settings['temperature']}, "
        f"top-p {report.settings['top_p']}, {report.settings['retrieve_k']} retrieved passages; agent: at most "
        f"{report.settings['max_revisions']} revisions",
        "",
        "## The number that matters",
        "",
        f"Full agent vs base model: style P(author) **{_fmt(top.agent_style)}** vs {_fmt(top.base_style)}; "
        f"grounding **{_fmt(top.agent_grounding)}** vs {_fmt(top.base_grounding)}. Verdict: {top.verdict}.",
        "",
        "## Mean score per variant",
        "",
        "All scores are in [0, 1], higher is better; `passed` is the share of outputs that pass every threshold. "
        "The last row scores the author's own held-out text with the same metrics.",
        "",
        "| variant | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " | words | n |",
        "|---|" + "---:|" * (len(METRICS) + 2),
    ]
    for group in groups:
        summary = report.summary[group]
        lines.append(
            f"| {group_label(group)} | "
            + " | ".join(_fmt(summary[m].mean) for m in METRICS)
            + f" | {_fmt(summary['words'].mean, 0)} | {summary['style'].n} |"
        )
    lines += ["", "## Held-out perplexity", ""]
    if report.perplexity:
        p = report.perplexity
        lines += [
            "| model | perplexity |",
            "|---|---:|",
            f"| base model | {p.base:.2f} |",
            f"| adapter | {p.adapter:.2f} |",
            "",
            f"Ratio adapter / base: **{p.ratio:.3f}** (below 1: the adapter predicts the author's unseen text "
            f"better; {'from the adapter registry' if p.source == 'adapter_metrics' else 'computed here on the test split'}).",
        ]
    else:
        lines.append("Not available.")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({path})" for name, path in plots.items()]
    errors = [o for o in report.outputs if o.error]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {group_label(o.variant)}, document {o.document_id}: {o.error}" for o in errors]
    if report.opik:
        lines += ["", "## Opik", ""]
        if "error" in report.opik:
            lines.append(f"Logging the experiment failed: {report.opik['error']}")
        else:
            lines.append(
                f"Dataset `{report.opik['dataset']}`, experiments: "
                + ", ".join(f"`{name}`" for name in report.opik["experiments"])
            )
    lines += ["", "## Per document", ""]
    for item in report.items:
        lines += [f"### Document {item.document_id}", "", f"Instruction: {item.instruction}", ""]
        lines += ["| variant | style | grounding | words | first words |", "|---|---:|---:|---:|---|"]
        for output in (o for o in report.outputs if o.document_id == item.document_id):
            snippet = " ".join(output.text.split()[:14]).replace("|", "\\|")
            lines.append(
                f"| {group_label(output.variant)} | {_fmt(output.scores.get('style'), 2)} | "
                f"{_fmt(output.scores.get('grounding'), 2)} | {output.words} | {snippet} |"
            )
        lines.append("")
    lines += [
        "## How to read this",
        "",
        "- *style*: P(author | text) from the classifier trained on the author's training documents against the "
        "base model's generic voice; the held-out reference row shows what the author's own unseen text gets.",
        "- *grounding*: share of sentences supported by the passages the variant saw (the base and adapter "
        "variants saw none and are checked against the passages retrieved for the same instruction).",
        "- *copying*: 1 - share of word 8-grams found in the training documents (0 when a 12-word run is copied).",
        "- Held-out documents are hidden from every variant (retrieval, the agent's style card and examples).",
        "",
    ]
    return "\n".join(lines)


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """``report.md``, ``report.json`` and the PNG plots in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_report(report, out_dir)
    report.out_dir = out_dir
    report.files = {"report.md": "report.md", "report.json": "report.json", **{v: v for v in plots.values()}}
    (out_dir / "report.md").write_text(render_markdown(report, plots), encoding="utf-8")
    (out_dir / "report.json").write_text(
        report.model_dump_json(indent=2) + "\n", encoding="utf-8"
    )
    return {name: out_dir / name for name in report.files}
