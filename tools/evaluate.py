"""`evaluate_draft`: score a draft with every metric of `evals` and say, in words, what to fix.

The metric state is fitted on the author's own documents (the request's links left out): a stylometric
profile, a copy detector and, when the active adapter's training data holds DPO pairs, a style classifier
(the author's texts against the base model's answers, the generic voice). It is built once per corpus state
and adapter and kept in `AgentDeps.evaluators`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from tools.options import ToolOptions
from tools.schemas import Critique
from twin.domain import PRIVATE_KINDS, Adapter, Author, Platform, own_writing
from twin.settings import Settings

if TYPE_CHECKING:
    from agents.deps import AgentDeps
    from evals.privacy import CopyDetector
    from evals.style import StyleProfile
    from evals.voice import VoiceScorer



class EvaluateDraftInput(BaseModel):
    text: str = Field(description="The draft to score.")
    platform: Platform
    passages: list[str] = Field(default_factory=list, description="Texts the draft should be grounded in.")
    brief: str = Field(default="", description="What the draft was asked to be about.")
    prompt: str = Field(default="", description="What the model was shown (a draft must not echo it).")
    grounding_required: bool = Field(
        default=True, description="False when the passages are the author's own past posts (background, not facts "
        "the draft must repeat): grounding is then reported but does not fail the draft.",
    )


class Evaluation(BaseModel):
    scores: dict[str, float]
    """Every available score in [0, 1] (higher is better), plus ``overall``, their weighted mean."""
    critique: Critique


@dataclass
class AuthorScorers:
    """What the metrics need from the author's corpus."""

    profile: StyleProfile | None
    copy_detector: CopyDetector | None
    classifier: VoiceScorer | None


def generic_voice_texts(settings: Settings, author: Author, adapter: Adapter | None) -> list[str]:
    """The base model's answers from the active adapter's DPO data (the generic voice), if it has any."""
    from training.dataset import adapter_dataset_dir

    if adapter is None:
        return []
    dataset_dir = adapter_dataset_dir(settings, author, adapter)
    pairs_file = dataset_dir / "dpo_train.jsonl" if dataset_dir else None
    if pairs_file is None or not pairs_file.exists():
        return []
    texts = []
    for line in pairs_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("feedback_id") is not None:
                continue  # an inbox preference: its rejected side is the twin's draft, not the base model's
            rejected = row.get("rejected") or []
            if rejected and str(rejected[-1].get("content", "")).strip():
                texts.append(rejected[-1]["content"])
    return texts


def author_scorers(deps: AgentDeps, author: Author, exclude_urls: Sequence[str] = ()) -> AuthorScorers:
    """Fit (or reuse) the author's metric state."""
    from evals.privacy import CopyDetector
    from evals.style import StyleProfile

    excluded = set(exclude_urls)
    documents = [d for d in own_writing(deps.store.list_documents(author)) if d.url not in excluded]
    adapter = deps.store.active_adapter(author)
    key = ("scorers", author.id)
    signature = (tuple(sorted((d.id, d.version) for d in documents)), adapter.id if adapter else None)
    cached = deps.evaluators.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    texts = [d.clean_text for d in documents if d.clean_text.strip()]
    # style is the public voice; the copy detector also knows private chats (a pasted private line is a leak)
    public = [d.clean_text for d in documents if d.clean_text.strip() and d.kind not in PRIVATE_KINDS]
    classifier = load_or_fit_voice_scorer(deps, author, adapter, public)
    scorers = AuthorScorers(
        profile=StyleProfile.from_texts(public) if public else None,
        copy_detector=CopyDetector(texts) if texts else None,
        classifier=classifier,
    )
    deps.evaluators[key] = (signature, scorers)
    return scorers


def load_or_fit_voice_scorer(
    deps: AgentDeps, author: Author, adapter: Adapter | None, texts: list[str]
) -> VoiceScorer | None:
    """The adapter version's voice scorer: read from its folder, or fitted once and saved there.

    Without an adapter there is no base-model voice to learn against (it comes from the DPO data), and
    style goes unmeasured rather than guessed.
    """
    from pathlib import Path

    from evals.voice import FILE_NAME, MIN_BASE_TEXTS, VoiceScorer, other_authors_texts

    if adapter is None or not texts:
        return None
    path = Path(adapter.path) / FILE_NAME
    if path.exists():
        try:
            return VoiceScorer.load(path)
        except Exception:  # noqa: BLE001 - an unreadable or old-format file is refitted below
            pass
    generic = generic_voice_texts(deps.settings, author, adapter)
    if len(generic) < MIN_BASE_TEXTS:
        return None
    try:
        scorer = VoiceScorer.fit(texts, generic, other_authors_texts(deps.store, author))
    except ValueError:
        return None  # too little prose on one side
    try:
        scorer.save(path)
    except OSError:
        pass  # a read-only adapter folder: the scorer still serves this process
    return scorer


class MemoEmbed:
    """Dense embeddings, each distinct text computed once.

    The critique of one run embeds the same passage sentences and brief for every candidate and revision
    (4 candidates x ~100 source sentences): with the memo each is embedded once, not once per candidate.
    Bounded, least recently used out first, so a long-lived tool set cannot grow without limit.
    """

    def __init__(self, embed: Callable[[Sequence[str]], list[list[float]]], max_texts: int = 4096) -> None:
        self._embed = embed
        self._max_texts = max_texts
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
            if missing:
                self._vectors.update(zip(missing, self._embed(missing), strict=True))
            vectors = [self._vectors[t] for t in texts]
            for text in texts:
                self._vectors.move_to_end(text)
            while len(self._vectors) > self._max_texts:
                self._vectors.popitem(last=False)
            return vectors


def evaluate(
    deps: AgentDeps, author: Author, options: ToolOptions, text: str, platform: Platform, passages: list[str],
    exclude_urls: Sequence[str] = (), *, brief: str = "", prompt: str = "", grounding_required: bool = True,
    embed: Callable[[Sequence[str]], list[list[float]]] | None = None,
) -> Evaluation:
    from evals.scoring import Thresholds, score_draft

    scorers = author_scorers(deps, author, exclude_urls)
    result = score_draft(
        text,
        platform,
        style=scorers.classifier,
        profile=scorers.profile,
        passages=passages,
        copy_detector=scorers.copy_detector,
        embed=embed or deps.ingestion.vectors.embedder.embed_documents,
        thresholds=Thresholds(
            style=options.style_threshold,
            stylometry=options.stylometry_threshold,
            grounding=options.grounding_threshold if grounding_required else 0.0,
            topic=options.topic_threshold,
        ),
        brief=brief,
        prompt=prompt,
        max_words=int(options.max_new_tokens / 1.6),
    )
    names = ("style", "stylometry", "grounding", "topic", "rules", "privacy", "copying", "hygiene", "overall")
    scores = {name: float(value) for name in names if (value := getattr(result, name)) is not None}
    critique = Critique(
        passed=result.passed,
        reasons=result.reasons,
        unsupported_sentences=result.unsupported_sentences,
        rule_violations=result.violations,
        metrics="evals",
        rejected=result.rejected,
    )
    return Evaluation(scores=scores, critique=critique)


def make_evaluate_draft(
    deps: AgentDeps, author: Author, options: ToolOptions, exclude_urls: Sequence[str] = ()
) -> BaseTool:
    embed = MemoEmbed(lambda texts: deps.ingestion.vectors.embedder.embed_documents(texts))

    async def evaluate_draft(
        text: str, platform: Platform, passages: list[str] | None = None, brief: str = "", prompt: str = "",
        grounding_required: bool = True,
    ) -> tuple[str, Evaluation]:
        evaluation = await asyncio.to_thread(
            lambda: evaluate(deps, author, options, text, platform, passages or [], exclude_urls,
                             brief=brief, prompt=prompt, grounding_required=grounding_required, embed=embed)
        )
        verdict = "passes" if evaluation.critique.passed else "fails"
        lines = [f"The draft {verdict}: " + ", ".join(f"{k}={v:.2f}" for k, v in evaluation.scores.items())]
        lines.extend(f"- {reason}" for reason in evaluation.critique.reasons)
        return "\n".join(lines), evaluation

    return StructuredTool.from_function(
        coroutine=evaluate_draft,
        name="evaluate_draft",
        description="Score a draft (style, grounding in the passages, platform rules, privacy, copying) "
        "and list what to fix.",
        args_schema=EvaluateDraftInput,
        response_format="content_and_artifact",
    )
