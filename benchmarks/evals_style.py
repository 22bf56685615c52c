"""How well do the style metrics tell real authors apart on held-out posts?

    .venv/bin/python -m benchmarks.evals_style [--corpora ../shared/corpora] [--train 150] [--test 60]

(as a module: run as a script, ``benchmarks/evals.py`` would shadow the ``evals`` package)

For each ordered pair (author, other) of the development corpora: documents are split by a seeded
shuffle, the classifier is trained on the author's training posts against the other's (standing in for
the generic voice), the profile on the author's training posts; then both score the held-out posts of
each. Prints ROC AUC and accuracy of P(author), and the AUC and mean of the stylometric distance.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from evals import StyleClassifier, StyleProfile, stylometric_distance

PAIRS = [
    ("brandur_leach_atoms", "simon_willison_til"),
    ("simon_willison_til", "brandur_leach_atoms"),
    ("chris_wellons", "josh_branchaud_til"),
    ("josh_branchaud_til", "chris_wellons"),
]


def load(root: Path, name: str, n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    lines = (root / f"{name}.jsonl").read_text().splitlines()
    texts = sorted(json.loads(line)["text"] for line in lines if line.strip())
    random.Random(0).shuffle(texts)
    cut = int(len(texts) * 0.7)
    return texts[:cut][:n_train], texts[cut:][:n_test]


def main() -> None:
    repo_root = Path(__file__).resolve().parents[1]
    default_root = os.environ.get("TWIN_CORPORA_DIR", str(repo_root.parent / "shared" / "corpora"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path(default_root))
    parser.add_argument("--train", type=int, default=150)
    parser.add_argument("--test", type=int, default=60)
    args = parser.parse_args()

    print("| author | vs | clf AUC | clf acc | fit s | stylo AUC | stylo same | stylo other |")
    print("|---|---|---|---|---|---|---|---|")
    for author, other in PAIRS:
        a_train, a_test = load(args.corpora, author, args.train, args.test)
        b_train, b_test = load(args.corpora, other, args.train, args.test)
        started = time.perf_counter()
        classifier = StyleClassifier.fit(a_train, b_train)
        fit_s = time.perf_counter() - started
        scores = classifier.score_many(a_test + b_test)
        labels = [1] * len(a_test) + [0] * len(b_test)
        accuracy = np.mean([(s > 0.5) == bool(y) for s, y in zip(scores, labels, strict=True)])
        profile = StyleProfile.from_texts(a_train)
        same = [stylometric_distance(profile, t) for t in a_test]
        different = [stylometric_distance(profile, t) for t in b_test]
        stylo_auc = roc_auc_score([0] * len(same) + [1] * len(different), same + different)
        print(
            f"| {author} | {other} | {roc_auc_score(labels, scores):.3f} | {accuracy:.3f} | {fit_s:.1f} | "
            f"{stylo_auc:.3f} | {np.mean(same):.3f} | {np.mean(different):.3f} |"
        )


if __name__ == "__main__":
    main()
