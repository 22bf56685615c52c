"""The command line: `leakcheck CONTRACT.toml BATCH.csv`.

Exit status 0 when the batch is dry, 1 when it leaks, 2 when the contract itself is broken.
That's the whole interface, so it drops into any scheduler, Makefile or shell script.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime, timezone

from leakcheck.checks import check_batch
from leakcheck.contract import Contract, ContractError


def main(argv: list[str] | None = None) -> int:
    """Check one CSV batch against one contract and print the report."""
    parser = argparse.ArgumentParser(
        prog="leakcheck",
        description="Check a CSV batch against its data contract before it goes any further.",
    )
    parser.add_argument("contract", help="the contract, a TOML file")
    parser.add_argument("batch", help="the batch, a CSV file with a header row")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="the moment to measure freshness from (ISO 8601); default: the current time, in UTC",
    )
    args = parser.parse_args(argv)

    try:
        contract = Contract.from_file(args.contract)
    except ContractError as error:
        print(f"leakcheck: the contract is broken: {error}", file=sys.stderr)
        return 2
    with open(args.batch, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    report = check_batch(contract, rows, loaded_at=args.now or datetime.now(timezone.utc))
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
