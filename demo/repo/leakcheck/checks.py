"""Checks: hold a batch up against its contract before it goes any further.

Four boring checks, run every single time, in this order:

1. shape: every promised column is there (and we mention the unpromised ones);
2. values: no empties where the contract says "never empty", every value parses as its type;
3. freshness: the newest row is recent enough;
4. volume: the batch has a believable number of rows.

Boring checks done every time catch more than clever checks done sometimes. A batch that
fails any of them should stay where it is: stale and true beats fresh and wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from leakcheck.contract import Column, Contract
from leakcheck.report import Report, Severity

MAX_EXAMPLES = 3
"""How many offending rows a finding names. Enough to start looking, short enough for a pager."""


def check_batch(contract: Contract, rows: Iterable[Mapping[str, Any]], *, loaded_at: datetime) -> Report:
    """Check `rows` against `contract` and say what leaked.

    `rows` are mappings from column name to value, as `csv.DictReader` gives them (strings,
    with "" for empty) or already typed. `loaded_at` is "now" for the freshness check; pass it
    in rather than letting the check read the clock, so a rerun next week gives the same answer.
    """
    rows = list(rows)
    report = Report(table=contract.table, rows_checked=len(rows))
    _check_shape(contract, rows, report)
    newest = _check_values(contract, rows, report)
    _check_freshness(contract, newest, loaded_at, report)
    _check_volume(contract, len(rows), report)
    return report


def _check_shape(contract: Contract, rows: list[Mapping[str, Any]], report: Report) -> None:
    present = set(rows[0]) if rows else set()
    if not rows:
        return
    for column in contract.columns:
        if column.name not in present:
            report.add("shape", Severity.LEAK, f"promised column {column.name!r} is missing")
    for name in sorted(present - {column.name for column in contract.columns}):
        report.add("shape", Severity.INFO, f"column {name!r} is not in the contract yet")


def _check_values(contract: Contract, rows: list[Mapping[str, Any]], report: Report) -> datetime | None:
    newest: datetime | None = None
    for column in contract.columns:
        empties: list[int] = []
        unparsable: list[tuple[int, Any]] = []
        for line, row in enumerate(rows, start=1):
            if column.name not in row:
                continue
            value = row[column.name]
            if _is_empty(value):
                if not column.nullable:
                    empties.append(line)
                continue
            try:
                parsed = parse_value(column, value)
            except ValueError:
                unparsable.append((line, value))
                continue
            if column.name == contract.freshness_column and isinstance(parsed, datetime):
                newest = parsed if newest is None or parsed > newest else newest
        if empties:
            report.add(
                "values", Severity.LEAK,
                f"{column.name!r} is empty in {len(empties)} row(s) but promised never to be "
                f"(rows {_examples(empties)})",
            )
        if unparsable:
            shown = ", ".join(f"row {line}: {value!r}" for line, value in unparsable[:MAX_EXAMPLES])
            report.add(
                "values", Severity.LEAK,
                f"{column.name!r} has {len(unparsable)} value(s) that are not {column.type} ({shown})",
            )
    return newest


def _check_freshness(
    contract: Contract, newest: datetime | None, loaded_at: datetime, report: Report
) -> None:
    if contract.freshness_minutes is None:
        return
    if newest is None:
        report.add(
            "freshness", Severity.LEAK,
            f"no usable {contract.freshness_column!r} value to measure freshness",
        )
        return
    behind = _as_utc(loaded_at) - newest
    allowed = timedelta(minutes=contract.freshness_minutes)
    if behind > allowed:
        report.add(
            "freshness", Severity.LEAK,
            f"newest {contract.freshness_column!r} is {int(behind.total_seconds() // 60)} minutes old "
            f"(promised at most {contract.freshness_minutes})",
        )


def _check_volume(contract: Contract, row_count: int, report: Report) -> None:
    if contract.min_rows is not None and row_count < contract.min_rows:
        report.add(
            "volume", Severity.LEAK,
            f"{row_count} rows, fewer than the {contract.min_rows} a normal batch brings",
        )
    if contract.max_rows is not None and row_count > contract.max_rows:
        report.add(
            "volume", Severity.LEAK,
            f"{row_count} rows, more than the {contract.max_rows} a normal batch brings",
        )


def parse_value(column: Column, value: Any) -> Any:
    """Parse one value as the column's type, or raise ValueError. Strings are stripped first."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if column.type == "text":
        return text
    if column.type == "integer":
        return int(text)
    if column.type == "decimal":
        try:
            return Decimal(text)
        except InvalidOperation as error:
            raise ValueError(text) from error
    if column.type == "timestamp":
        return _as_utc(datetime.fromisoformat(text))
    if column.type == "date":
        return date.fromisoformat(text)
    if column.type == "boolean":
        if text.lower() in ("true", "t", "1", "yes"):
            return True
        if text.lower() in ("false", "f", "0", "no"):
            return False
        raise ValueError(text)
    raise ValueError(f"unknown type {column.type}")


def _as_utc(moment: datetime) -> datetime:
    # A timestamp without a zone is a shrug about time; we read it as UTC and say so in the docs.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _examples(lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:MAX_EXAMPLES])
    return shown + (", …" if len(lines) > MAX_EXAMPLES else "")
