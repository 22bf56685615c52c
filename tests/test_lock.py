"""requirements.lock pins every dependency pyproject.toml names, inside its range, at the version this
environment runs: the one the tests pass with and scripts/setup.sh installs on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FIX = "run scripts/lock.sh once the tests pass, and commit requirements.lock"


def _locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line):
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def test_every_dependency_of_pyproject_is_locked_inside_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    locked = _locked()
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in locked]
    assert not missing, f"not in requirements.lock: {missing}: {FIX}"
    outside = [f"{r} (locked {locked[canonicalize_name(r.name)]})" for r in wanted
               if not r.specifier.contains(locked[canonicalize_name(r.name)], prereleases=True)]
    assert not outside, f"locked outside pyproject.toml's range: {outside}: {FIX}"


def test_this_environment_runs_the_locked_versions() -> None:
    drift = []
    for name, pinned in _locked().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            drift.append(f"{name} (locked {pinned}, not installed)")
            continue
        if installed.public != pinned.public:  # torch's CPU build: 2.13.0+cpu is 2.13.0
            drift.append(f"{name} {installed} (locked {pinned})")
    assert not drift, f"installed versions differ from requirements.lock: {drift}: run `make setup`, or {FIX}"
