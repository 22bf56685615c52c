"""The picture in the README stays true: imports flow one way and no package has an import cycle.

The contracts live in pyproject.toml (`[tool.importlinter]`); import-linter reads every import statement,
including the ones inside functions, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_follow_the_layers_and_have_no_cycles(capsys):
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert code == 0, report[report.find("Broken contracts"):]

