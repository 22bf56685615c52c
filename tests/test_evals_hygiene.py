"""Hygiene (what a draft must never be) and the voice scorer, on real authors' writing."""

from __future__ import annotations

import pytest

from evals.hygiene import check_hygiene, clean_draft, invented_urls, placeholders_in, repeated_ngram_rate
from evals.scoring import score_draft

TITLE = "Why we stopped running nightly batch jobs"
POST = (
    "For years our warehouse ran one giant batch at 2am. When it failed, nobody knew until the morning "
    "dashboards were blank, and rerunning it took four hours.\n\n"
    "We replaced it with small incremental backfills that run every ten minutes over the rows that changed. "
    "A failure now costs ten minutes of data, not a day, and the on-call engineer can rerun one slice by hand."
)


def test_assistant_preamble_sign_off_repeats_and_invented_links_are_removed() -> None:
    raw = (
        "Sure! Here's a LinkedIn post about nightly batch jobs:\n\n"
        + POST.replace("by hand.", "by hand. See https://made-up.example.org/guide for more.")
        + "\n\nA failure now costs ten minutes of data, not a day, and the on-call engineer can rerun one slice by hand."
        + "\n\nI hope this helps! Let me know if you want any changes."
    )
    cleaned = clean_draft(raw, allowed_text=TITLE)
    assert cleaned.text.startswith("For years our warehouse")
    assert "I hope this helps" not in cleaned.text and "Let me know" not in cleaned.text
    assert "made-up.example.org" not in cleaned.text
    assert cleaned.text.count("A failure now costs ten minutes") == 1
    kinds = {r.split(":")[0] for r in cleaned.removed}
    assert kinds == {"preamble", "sign-off", "invented link", "repeated sentence"}
    assert not check_hygiene(cleaned.text, brief=TITLE).reject


def test_links_from_the_brief_or_sources_stay() -> None:
    text = "We wrote it up at https://blog.tova.dev/backfills and the numbers are in the post."
    assert invented_urls(text, "notes from https://blog.tova.dev/backfills") == []
    assert invented_urls(text, "") == ["https://blog.tova.dev/backfills"]
    assert invented_urls("Slides: https://www.blog.tova.dev/backfills/?ref=x.", "see https://blog.tova.dev/backfills") == []


def test_a_made_up_page_on_a_real_site_is_invented() -> None:
    """Seen in a benchmark draft: the sources cite datasette.io, the draft links a datasette.io page that does
    not exist. Parents of a given page and a given site's home page stay."""
    sources = "Docs at https://datasette.io/plugins/datasette-write and code at https://github.com/simonw/llm"
    draft = ("The tool is at https://datasette.io/write-to-file/ and https://github.com/simonw/uv/. "
             "See https://datasette.io/, https://github.com/simonw and https://datasette.io/plugins/datasette-write.")
    assert invented_urls(draft, sources) == ["https://datasette.io/write-to-file/", "https://github.com/simonw/uv/"]
    cleaned = clean_draft(draft, allowed_text=sources)
    assert "write-to-file" not in cleaned.text and "simonw/uv" not in cleaned.text
    assert "https://github.com/simonw " in cleaned.text + " " and "datasette-write" in cleaned.text


def test_a_half_sentence_cut_off_by_the_budget_is_dropped() -> None:
    cleaned = clean_draft(POST + " Next we will move the", truncated=True)
    assert cleaned.text.endswith("by hand.") and cleaned.removed[-1].startswith("cut-off sentence")


@pytest.mark.parametrize(
    ("draft", "problem"),
    [
        ("Task: write one LinkedIn post of about 109 words about: " + TITLE, "echo"),
        ("1. Stylometry: closeness 0.65, below 0.75: hashtags per 100 words: 9.2 in the draft vs typically 1.8",
         "echo"),
        (TITLE + ".", "restates the brief"),
        ("We moved on. " + "The batch was slow and we moved on. " * 8, "loop"),
        ("I'd be happy to help with that! " + POST, "assistant"),
    ],
)
def test_not_a_post_is_rejected(draft: str, problem: str) -> None:
    prompt = "Task: write one LinkedIn post of about 109 words about: " + TITLE
    result = check_hygiene(draft, brief=TITLE, prompt_texts=[prompt])
    assert result.reject and any(problem in p for p in result.problems), result.problems
    scores = score_draft(draft, "linkedin", brief=TITLE, prompt=prompt)
    assert scores.rejected and not scores.passed


def test_a_real_post_passes_hygiene_and_real_authors_loop_rarely(corpora_dir) -> None:
    from conftest import corpus_texts

    assert not check_hygiene(POST, brief=TITLE, prompt_texts=["Write a LinkedIn post titled " + TITLE]).reject
    texts = corpus_texts("chris_wellons", 40)
    rates = sorted(repeated_ngram_rate(t) for t in texts)
    assert rates[len(rates) // 2] < 0.06  # the loop threshold (0.15) sits far above how people write


def test_blog_length_rule_fits_the_generation_budget() -> None:
    words_200 = " ".join(["Backfills run every ten minutes now."] * 40)
    from evals.rules import check_platform_rules

    assert any(v.startswith("article_length") for v in check_platform_rules(words_200[:600], "blog").violations)
    within_budget = check_platform_rules(words_200, "blog", max_words=200)
    assert not any(v.startswith("article_length") for v in within_budget.violations)


def test_voice_scorer_separates_the_author_from_other_voices(corpora_dir) -> None:
    from conftest import corpus_texts
    from evals.voice import VoiceScorer

    author = corpus_texts("chris_wellons", 60)
    generic = corpus_texts("brandur_leach_atoms", 60)  # stands in for the base model's answers here
    others = corpus_texts("josh_branchaud_til", 40)
    scorer = VoiceScorer.fit(author[:45], generic[:45], others)
    assert scorer.info.held_out_auc is not None and scorer.info.held_out_auc >= 0.9
    own = scorer.score_many(author[45:])
    foreign = scorer.score_many(generic[45:] + corpus_texts("simon_willison_til", 15))
    assert min(own) > 0.5 > max(foreign) or sum(own) / len(own) - sum(foreign) / len(foreign) > 0.6


def test_wrapping_paragraph_tags_go_and_html_in_prose_or_code_stays() -> None:
    """Seen in a demo chat: a draft that opened with ``<p>``. A post is markdown; a tag the post is about
    (in a sentence or in code) is content."""
    raw = "<p>" + POST.replace("\n\n", "</p>\n\n<p>") + "</p>\n\n<br>\n\nWrap it in a <p> tag, or `<div>`:\n\n```html\n<p>hi</p>\n```"
    cleaned = clean_draft(raw, allowed_text=TITLE)
    assert cleaned.text.startswith("For years our warehouse") and "by hand.\n\nWrap it" in cleaned.text
    assert "Wrap it in a <p> tag, or `<div>`:" in cleaned.text and "```html\n<p>hi</p>\n```" in cleaned.text
    assert [r for r in cleaned.removed if r.startswith("html")] == ["html: <p> </p>", "html: <p> </p>", "html: <br>"]


@pytest.mark.parametrize(
    ("text", "blanks"),
    [
        ("At [my company] we moved to backfills.", ["[my company]"]),
        ("Thanks to [Your Name] and the [Company Name] team. Sign up at [Insert link].",
         ["[Your Name]", "[Company Name]", "[Insert link]"]),
        ("usage: fetch [url] [date], as in the man page", []),
        ("Read [the post](https://blog.tova.dev/x), see [docs][1] and [1]: https://blog.tova.dev/y", []),
        ("- [x] done\n- [ ] todo, and `arr[name]` or `[your value]` in code", []),
        ("```\nconfig = {'[your key]': 1}\n```\nNothing to fill in here.", []),
    ],
)
def test_template_placeholders_are_found_in_prose_only(text: str, blanks: list[str]) -> None:
    assert placeholders_in(text) == blanks


def test_a_draft_with_a_placeholder_scores_lower_and_fails_but_is_not_rejected() -> None:
    clean = check_hygiene(POST, brief=TITLE)
    blank = check_hygiene(POST.replace("our warehouse", "[my company]'s warehouse"), brief=TITLE)
    assert blank.placeholders == ["[my company]"] and not blank.reject and not blank.problems
    assert blank.score < clean.score - 0.4
    scores = score_draft(POST.replace("our warehouse", "[my company]'s warehouse"), "linkedin", brief=TITLE)
    assert not scores.passed and not scores.rejected
    assert any(r.startswith("Placeholders: the draft leaves [my company]") for r in scores.reasons)
    assert score_draft(POST, "linkedin", brief=TITLE).hygiene > scores.hygiene
