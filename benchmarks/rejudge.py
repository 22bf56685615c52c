"""The twin-quality judge at other passage lengths, validated, and the stored drafts re-scored -> JSON.

    python -m benchmarks.rejudge --judge-base /tmp/tq-simon/twin_quality_judge_base.json \\
        --results benchmarks/results/twin_quality_simon_400judge.json \\
                  benchmarks/results/twin_quality_chris_defaults.json \\
        --words 300,150,100 --out benchmarks/results/judge_lengths.json

The drafts the benchmark judges are 30-130 words (160 new tokens), while its judge trained on 300-word
passages. For each passage length this refits the judge exactly as `benchmarks.twin_quality` does (same
classes, same base answers from a run's cache, same split) and reports:

- its validation on texts it never saw: each author's held-out posts (read to the judge's length) and the
  held-out fifth of the base model's answers, and the same texts cut to ``--validate-words`` (100: about a
  draft's length) for every judge alike. These numbers choose a judge; nothing about the drafts does;
- the stored drafts of each results file re-scored: judge top-1 and mean P(author) per variant, and the
  three judge targets (`benchmarks.twin_quality.judge_targets`: agent top-1 >= 0.7, agent mean P >= 0.5,
  base top-1 <= 0.2).

Drafts a results file withheld (they copied a corpus run) cannot be re-scored and are counted as such.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import judge as J
from benchmarks.twin_quality import (
    ALL_AUTHORS,
    AUTHOR_VARIANT,
    DEMO_AUTHOR,
    JUDGE_WORDS_PER_CLASS,
    RESULTS,
    fit_judge,
    judge_classes,
    judge_targets,
    split_corpus,
)


def splits_of(results: dict[str, Any]) -> dict[str, Any]:
    """The split a results file was judged with (its authors, seed, held-out counts, train docs)."""
    settings = results["settings"]
    authors = settings["authors"]
    judged = (*ALL_AUTHORS, DEMO_AUTHOR) if DEMO_AUTHOR in authors else ALL_AUTHORS
    train_docs = settings["train_docs"] if isinstance(settings["train_docs"], int) else None
    held_out = {a: len(results["authors"][a]["split"]["held_out_titles"]) for a in authors}
    return {a: split_corpus(a, held_out.get(a, settings["held_out"]), settings["seed"],
                            train_docs if a in authors else None) for a in judged}


def rescore(results: dict[str, Any], splits: dict[str, Any], judge: J.AuthorshipJudge) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for author, block in results["authors"].items():
        by_variant: dict[str, list[str]] = {}
        withheld: dict[str, int] = {}
        for row in block["drafts"]:
            if row["text"].startswith("[withheld:"):
                withheld[row["variant"]] = withheld.get(row["variant"], 0) + 1
                continue
            by_variant.setdefault(row["variant"], []).append(row["text"])
        by_variant[AUTHOR_VARIANT] = [J.raw_head(r["text"]) for r in splits[author].held_out]
        variants = {}
        for variant, texts in by_variant.items():
            verdicts = judge.judge(texts, author)
            variants[variant] = {
                "n": len(verdicts),
                "judge_top1": sum(v["top1"] for v in verdicts) / len(verdicts),
                "judge_mean_p_author": statistics.fmean(v["p_author"] for v in verdicts),
                "before": {k: block["variants"].get(variant, {}).get(k) for k in ("judge_top1", "judge_mean_p_author")},
            }
        out[author] = {"variants": variants, "withheld": withheld, "judge_targets": judge_targets(variants)}
    return out


def summary(validation: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {"top1": v["top1"], "mean_p": v["mean_p"], "predicted": v["predicted"]} for k, v in validation.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rejudge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge-base", type=Path, required=True,
                        help="a twin-quality data dir's twin_quality_judge_base.json (the base model's answers)")
    parser.add_argument("--results", type=Path, nargs="+", required=True, help="twin-quality results files")
    parser.add_argument("--words", default="300,150,100", help="passage lengths to compare")
    parser.add_argument("--validate-words", type=int, default=100,
                        help="also validate every judge on the held-out texts cut to this many words (a draft's length)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "judge_lengths.json")
    args = parser.parse_args(argv)
    try:
        lengths = [int(w) for w in args.words.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--words takes comma-separated word counts, not {args.words!r}")
    if not lengths or min(lengths) < 2:
        parser.error(f"--words needs passage lengths of at least 2 words, not {args.words!r}")
    if not args.judge_base.exists():
        parser.error(f"no base answers at {args.judge_base}")
    base_cache = json.loads(args.judge_base.read_text())
    if not base_cache.get("outputs"):
        parser.error(f"{args.judge_base} holds no base answers (a twin_quality_judge_base.json has 'outputs')")
    files: dict[str, dict[str, Any]] = {}
    for path in args.results:
        if not path.exists():
            parser.error(f"no results file at {path}")
        results = json.loads(path.read_text())
        if results.get("benchmark") != "twin_quality" or not results.get("authors"):
            parser.error(f"{path} is not a twin-quality results file with drafts")
        files[str(path)] = results

    report: dict[str, Any] = {}
    for words in lengths:
        options = argparse.Namespace(seed=args.seed, judge_words=words, judge_max_passages=0)
        row: dict[str, Any] = {"validation": {}, "results": {}}
        judges: dict[str, J.AuthorshipJudge] = {}
        for name, results in files.items():
            splits = splits_of(results)
            # Runs that judged the same classes share a judge: only their collected part differs, and the
            # judge trains on every non-held-out post either way.
            judged = ",".join(sorted(splits))
            if judged not in judges:
                classes, validation_texts = judge_classes(splits, base_cache["outputs"])
                judge, validation = fit_judge(classes, validation_texts, options)
                # The same texts cut to a draft's length, for every judge alike: what the drafts ask of it.
                short = judge.validate({k: [J.head(t, args.validate_words) for t in texts]
                                        for k, texts in validation_texts.items()})
                judges[judged] = judge
                row["validation"][judged] = {
                    "per_class": summary(validation),
                    "mean_top1": statistics.fmean(v["top1"] for v in validation.values()),
                    f"per_class_at_{args.validate_words}_words": summary(short),
                    f"mean_top1_at_{args.validate_words}_words": statistics.fmean(v["top1"] for v in short.values()),
                    "train_passages": judge.info["train_passages"],
                }
            row["results"][name] = rescore(results, splits, judges[judged])
        report[str(words)] = row
        for judged, v in row["validation"].items():
            for label, key in (("", ""), (f" at {args.validate_words} words", f"_at_{args.validate_words}_words")):
                classes_line = ", ".join(f"{k} {c['top1']:.0%}" for k, c in v["per_class" + key].items())
                print(f"{words:>4} words [{judged}]: validation{label} mean {v['mean_top1' + key]:.0%} ({classes_line})")
        for name, per_author in row["results"].items():
            for author, r in per_author.items():
                line = "  ".join(f"{k} {m['judge_top1']:.0%}/{m['judge_mean_p_author']:.2f}"
                                 for k, m in r["variants"].items())
                print(f"       {Path(name).name} {author}: {line}")

    out = {
        "benchmark": "rejudge",
        "created_at": datetime.now(UTC).isoformat(),
        "command": "python -m benchmarks.rejudge " + " ".join(argv if argv is not None else sys.argv[1:]),
        "judge_base": {"file": str(args.judge_base), "key": base_cache.get("key"),
                       "outputs": len(base_cache.get("outputs", []))},
        "words_per_class": JUDGE_WORDS_PER_CLASS,
        "note": "choose a length by validation (texts the judge never saw); the re-scored drafts show what the "
                "choice does to stored runs. A run that judged a demo author had its own base answers (with her "
                "titles); these use the given cache's.",
        "lengths": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
