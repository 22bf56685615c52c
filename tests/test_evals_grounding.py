"""Grounding on a real post: sentences taken from the sources pass, an invented number or name does not."""

from __future__ import annotations

import re

import pytest

from conftest import corpus_rows
from evals import check_grounding
from evals.text import split_sentences, strip_code

TITLE = "Paginating through the GitHub GraphQL API with Python"


@pytest.fixture(scope="module")
def post() -> dict:
    matches = [row for row in corpus_rows("simon_willison_til") if row["title"] == TITLE]
    if not matches:
        pytest.skip(f"post {TITLE!r} not in the corpus")
    return matches[0]


@pytest.fixture(scope="module")
def passages(post) -> list[str]:
    return [p for p in post["text"].split("\n\n") if p.strip()]


@pytest.fixture(scope="module")
def number_sentence(post) -> str:
    """A prose sentence of the post with a number in it ("Since I have 316 public repos ...")."""
    with_numbers = [s for s in draft_sentences(post, 100) if re.search(r"\b\d{2,}\b", s)]
    assert with_numbers
    return with_numbers[0]


def draft_sentences(post, n: int = 4) -> list[str]:
    sentences = split_sentences(strip_code(post["text"]))
    prose = [s for s in sentences if "http" not in s and len(s.split()) > 6 and not s.startswith("#")]
    return prose[:n]


def test_sentences_from_the_sources_are_supported(post, passages):
    draft = " ".join(draft_sentences(post))
    result = check_grounding(draft, passages)
    assert result.score == 1.0
    assert result.unsupported == []


def test_invented_number_is_flagged(post, passages, number_sentence):
    original = re.search(r"\b\d{2,}\b", number_sentence).group(0)
    invented = str(int(original) * 3 + 7)
    assert invented not in post["text"]
    changed = number_sentence.replace(original, invented, 1)
    draft = " ".join([*draft_sentences(post, 2), changed])

    result = check_grounding(draft, passages)
    assert result.unsupported == [changed]
    detail = next(s for s in result.sentences if s.sentence == changed)
    assert detail.missing_numbers == [invented]
    assert invented in detail.reason
    assert result.score == pytest.approx(2 / 3)
    assert "not in the sources" in result.describe()[0]


def test_invented_name_and_unrelated_claim_are_flagged(post, passages):
    name_claim = "According to Margaret Hamilton, this approach cut the request count in half."
    unrelated = "My cat enjoys sleeping on warm laptops during long afternoon naps."
    draft = " ".join([*draft_sentences(post, 2), name_claim, unrelated, "Thoughts?"])
    result = check_grounding(draft, passages)
    assert result.unsupported == [name_claim, unrelated]
    detail = next(s for s in result.sentences if s.sentence == name_claim)
    assert set(detail.missing_names) == {"Margaret", "Hamilton"}


def test_no_passages_supports_nothing_factual(post):
    result = check_grounding(" ".join(draft_sentences(post, 2)), [])
    assert result.score == 0.0


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    """The project's real dense embedder (all-MiniLM-L6-v2 exported to ONNX, run by fastembed)."""
    from twin.settings import Settings
    from twin.vectors import Embedder

    return Embedder(Settings(data_dir=tmp_path_factory.mktemp("twin-data")))


@pytest.mark.slow  # exporting the embedder to ONNX takes 20-50 s on a busy 2-core machine
def test_embedding_similarity_supports_paraphrase_but_not_invention(post, passages, number_sentence, embedder):
    paraphrase = "GitHub's GraphQL API lets you fetch up to a hundred repositories in a single call."
    unrelated = "My cat enjoys sleeping on warm laptops during long afternoon naps."
    draft = " ".join([*draft_sentences(post, 2), paraphrase, unrelated])
    result = check_grounding(draft, passages, embedder.embed_documents)
    by_sentence = {s.sentence: s for s in result.sentences}
    assert by_sentence[draft_sentences(post, 1)[0]].similarity > 0.95
    assert by_sentence[paraphrase].supported, by_sentence[paraphrase]
    assert not by_sentence[unrelated].supported
    assert by_sentence[unrelated].similarity < 0.3
