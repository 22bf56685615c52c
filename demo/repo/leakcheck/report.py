"""Reports: what a check found, in plain text that fits in a pager message.

No HTML, no dashboard. If a finding needs a dashboard to explain itself, the check is too
clever. A report is written for a tired person at 3am: the verdict first, then one line per
finding, with numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    """How loudly a finding should shout."""

    INFO = "info"
    """Worth knowing, never stops a load (a new column nobody promised yet)."""
    LEAK = "leak"
    """The promise is broken. The batch should not go any further."""


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    message: str


@dataclass
class Report:
    """The outcome of checking one batch against one contract."""

    table: str
    rows_checked: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing leaked. INFO findings don't count against a batch."""
        return not self.leaks

    @property
    def leaks(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity is Severity.LEAK]

    def add(self, check: str, severity: Severity, message: str) -> None:
        self.findings.append(Finding(check, severity, message))

    def render(self) -> str:
        """The report as plain text: verdict line first, then one line per finding."""
        verdict = "dry" if self.ok else f"LEAKING ({len(self.leaks)} broken promise(s))"
        lines = [f"{self.table}: {verdict}, {self.rows_checked} rows checked"]
        for finding in sorted(self.findings, key=lambda item: item.severity is not Severity.LEAK):
            marker = "✗" if finding.severity is Severity.LEAK else "·"
            lines.append(f"  {marker} [{finding.check}] {finding.message}")
        return "\n".join(lines)
