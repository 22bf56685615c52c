"""Contracts: the promise a table makes to the strangers who read it.

A contract is a small TOML file that lives next to the code that builds the table. It says
which columns exist, which of them may be empty, how fresh the newest row must be, and how
many rows a normal batch brings. Nothing in this module talks to a database. A contract is
just the promise, written down; checking it is the job of `leakcheck.checks`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COLUMN_TYPES = ("text", "integer", "decimal", "timestamp", "date", "boolean")


class ContractError(ValueError):
    """The contract itself is broken. Fix the promise before checking anyone against it."""


@dataclass(frozen=True)
class Column:
    """One column of the promise.

    `meaning` is written for the stranger, not for us: what the value is, in which unit,
    and what empty means when empty is allowed. NULL is not a value, it's a shrug, so say
    which shrug.
    """

    name: str
    type: str
    nullable: bool = False
    meaning: str = ""


@dataclass(frozen=True)
class Contract:
    """Everything a reader of `table` may rely on, in a form a machine can check."""

    table: str
    owner: str
    columns: tuple[Column, ...]
    grain: str = ""
    freshness_column: str | None = None
    freshness_minutes: int | None = None
    min_rows: int | None = None
    max_rows: int | None = None

    def column(self, name: str) -> Column | None:
        """The column called `name`, or None when the contract doesn't promise it."""
        return next((column for column in self.columns if column.name == name), None)

    @classmethod
    def from_file(cls, path: str | Path) -> Contract:
        """Read a contract from a TOML file. Loud on anything it doesn't understand."""
        with open(path, "rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise ContractError(f"{path}: not valid TOML ({error})") from error
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contract:
        """Build a contract from already-parsed TOML (handy in tests)."""
        table = data.get("table") or {}
        if not table.get("name"):
            raise ContractError("[table] needs a name")
        if not table.get("owner"):
            raise ContractError(f"{table['name']}: [table] needs an owner. A joint with no owner leaks.")
        columns = tuple(_column(raw, table["name"]) for raw in data.get("columns", []))
        if not columns:
            raise ContractError(f"{table['name']}: a contract with no columns promises nothing")
        names = [column.name for column in columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ContractError(f"{table['name']}: columns listed twice: {', '.join(duplicates)}")
        volume = data.get("volume") or {}
        contract = cls(
            table=table["name"],
            owner=table["owner"],
            columns=columns,
            grain=table.get("grain", ""),
            freshness_column=table.get("freshness_column"),
            freshness_minutes=table.get("freshness_minutes"),
            min_rows=volume.get("min_rows"),
            max_rows=volume.get("max_rows"),
        )
        if contract.freshness_minutes is not None and contract.freshness_column is None:
            raise ContractError(f"{contract.table}: freshness_minutes needs a freshness_column to measure")
        if contract.freshness_column and contract.column(contract.freshness_column) is None:
            raise ContractError(
                f"{contract.table}: freshness_column {contract.freshness_column!r} is not a column"
            )
        return contract


def _column(raw: dict[str, Any], table: str) -> Column:
    if "name" not in raw or "type" not in raw:
        raise ContractError(f"{table}: every [[columns]] entry needs a name and a type")
    if raw["type"] not in COLUMN_TYPES:
        raise ContractError(
            f"{table}.{raw['name']}: unknown type {raw['type']!r} (expected one of {', '.join(COLUMN_TYPES)})"
        )
    return Column(
        name=raw["name"],
        type=raw["type"],
        nullable=bool(raw.get("nullable", False)),
        meaning=raw.get("meaning", ""),
    )
