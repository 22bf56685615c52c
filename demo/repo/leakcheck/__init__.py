"""leakcheck: tiny data-contract checks for batch pipelines. Boring on purpose.

Leaks live at the joints, where one system hands data to another. leakcheck sits at the
joint: it reads a small contract (columns, emptiness, freshness, volume) and checks a batch
against it before the batch is allowed any further.

    from leakcheck import Contract, check_batch

    contract = Contract.from_file("contracts/bookings.toml")
    report = check_batch(contract, rows, loaded_at=now)
    if not report.ok:
        raise SystemExit(report.render())
"""

from leakcheck.checks import check_batch
from leakcheck.contract import Column, Contract, ContractError
from leakcheck.report import Finding, Report, Severity

__all__ = ["Column", "Contract", "ContractError", "Finding", "Report", "Severity", "check_batch"]
__version__ = "0.3.0"
