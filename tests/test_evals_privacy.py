"""Contact details in drafts, and verbatim copying from the author's old posts."""

from __future__ import annotations

import random

import pytest

from conftest import corpus_texts
from evals import CopyDetector, check_privacy, find_phone_numbers


@pytest.fixture(scope="module")
def josh_split() -> tuple[list[str], list[str]]:
    texts = sorted(corpus_texts("josh_branchaud_til"))
    random.Random(0).shuffle(texts)
    return texts[:600], texts[600:640]


def test_emails_and_phone_numbers_are_found():
    draft = (
        "Happy to chat: write to jane.doe@fastmail.com or call +1 (415) 555-0132 (or 020 7946 0958 in London). "
        "Release 2.4.1 shipped on 2024-03-18 at 14:05 to 1,200,000 users from 10.0.12.7."
    )
    result = check_privacy(draft)
    assert result.score == 0.0
    assert result.emails == ["jane.doe@fastmail.com"]
    assert result.phones == ["+1 (415) 555-0132", "020 7946 0958"]
    assert "jane.doe@fastmail.com" in result.describe()[0]
    assert check_privacy(draft, allowed=["jane.doe@fastmail.com", "+1 (415) 555-0132", "020 7946 0958"]).score == 1.0


def test_real_prose_has_no_false_alarms():
    posts = corpus_texts("brandur_leach_atoms")
    assert all(check_privacy(p).score == 1.0 for p in posts)
    # Lists of numbers, dates and times in technical posts are not phone numbers.
    assert find_phone_numbers("pixels 128 128 128 128 at 2020-04-21 18:00, host 192.168.100.200") == []


def test_pasted_span_is_flagged(josh_split):
    train, held_out = josh_split
    detector = CopyDetector(train, n=8)
    fresh = held_out[0]
    assert not detector.score(fresh).flagged

    paragraph = next(
        p for t in train for p in t.split("\n\n") if len(p.split()) >= 25 and not any(c in p for c in "`[]()<>/")
    )
    pasted = " ".join(paragraph.split()[:20])  # 20 words of prose from an old post
    result = detector.score(f"{fresh}\n\n{pasted}\n\nAnd that is all I have to say about it today.")
    assert result.flagged
    assert result.longest_copied_run >= 20
    assert result.score == 0.0
    assert 0.0 < result.copied_fraction < 1.0
    assert "copied verbatim" in result.describe()[0]


def test_short_shared_phrases_are_not_copying(josh_split):
    train, held_out = josh_split
    detector = CopyDetector(train, n=8, flag_words=12)
    results = [detector.score(t) for t in held_out]
    # Unseen posts by the same author share idioms, but not 12-word runs (allow one boilerplate outlier).
    assert sum(r.flagged for r in results) <= 1
    assert sum(r.copied_fraction for r in results) / len(results) < 0.05
