"""One Opik experiment per variant, when Opik is configured (the dashboard's view of the same scores)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evals.report.schemas import EvalReport
from evals.report.scoring import Scorers

if TYPE_CHECKING:
    from twin.settings import Settings


def log_opik_experiments(
    settings: Settings, report: EvalReport, scorers: Scorers, passages: dict[tuple[str, int], list[str]]
) -> dict[str, Any]:
    """One Opik experiment per variant over a dataset of the held-out instructions (needs an Opik server)."""
    import opik

    from evals.opik_metrics import build_metrics

    client = opik.Opik(project_name=settings.opik_project, host=settings.opik_url, api_key=settings.opik_api_key)
    dataset = client.get_or_create_dataset(name=f"twin-eval-{report.author}")
    dataset.insert(
        [
            {"input": item.instruction, "document_id": item.document_id, "platform": item.platform.value}
            for item in report.items
        ]
    )
    by_key = {(o.variant, o.document_id): o for o in report.outputs}
    stamp = report.created_at.strftime("%Y%m%d-%H%M%S")
    experiments: list[str] = []
    for variant in report.variants:

        def task(item: dict[str, Any], variant: str = variant) -> dict[str, Any]:
            key = (variant, int(item["document_id"]))
            output = by_key.get(key)
            return {
                "output": output.text if output else "",
                "context": passages.get(key, []),
                "platform": item.get("platform"),
            }

        name = f"{report.author}-{variant}-{stamp}"
        opik.evaluate(
            dataset=dataset,
            task=task,
            scoring_metrics=build_metrics(
                style=scorers.classifier, profile=scorers.profile, copy_detector=scorers.copy_detector,
                embed=scorers.embed,
            ),
            experiment_name=name,
            project_name=settings.opik_project,
            experiment_config={
                "author": report.author, "variant": variant, "adapter_version": report.adapter_version,
                "base_model": report.base_model,
            },
            verbose=0,
            task_threads=1,
        )
        experiments.append(name)
    client.flush()
    return {"dataset": f"twin-eval-{report.author}", "experiments": experiments}
