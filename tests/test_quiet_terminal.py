"""The terminal speaks plainly: `twin` commands print their output and our own warnings, never library logs,
FutureWarnings or tracebacks; those go to ``<data_dir>/logs/<name>.log``. Run as real subprocesses (the
routing is process-wide). Timings are printed, not asserted: `benchmarks/` measures them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TWIN = [sys.executable, "-c", "import sys; from cli import main; sys.argv[0] = 'twin'; main()"]
NOISE = ("Traceback", "Warning", "WARNING", "warn(", "INFO", "ray", "(raylet)", "PlacementGroupCleaner")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_") or k == "TWIN_TEST_MODELS_DIR"}
    env.update(TWIN_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), PYTHONWARNINGS="default")
    return env


def _run(args: list[str], data_dir: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run([*TWIN, *args], check=False, env=_env(data_dir), capture_output=True, text=True, timeout=120,
                          cwd=data_dir.parent)
    return done, time.perf_counter() - started


def test_an_invalid_setting_is_one_clear_error_without_a_logging_traceback(tmp_path: Path) -> None:
    """Records logged before the command reads its settings cannot find the log file: they are dropped, and
    the settings error is what the person sees."""
    env = _env(tmp_path / "data") | {"TWIN_SERVE__PROMPT_CACHE_MB": "-1"}
    done = subprocess.run([*TWIN, "author", "list"], check=False, env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "serve.prompt_cache_mb" in output and "greater than or equal to 0" in output
    assert "Logging error" not in output and "Traceback" not in output, output


@pytest.mark.parametrize("args", [["--help"], ["author", "list"], ["author", "list", "--json"]])
def test_commands_print_no_library_noise(tmp_path: Path, args: list[str]) -> None:
    data_dir = tmp_path / "data"
    done, seconds = _run(args, data_dir)
    print(f"twin {' '.join(args)}: {seconds:.2f} s (wall, on a shared machine)")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert not [word for word in NOISE if word in done.stdout], done.stdout
    if args == ["--help"]:
        assert not data_dir.exists()  # --help reads no settings and writes no log
    else:
        # The store's migrations logged (alembic, INFO): to the file, not the terminal.
        log = (data_dir / "logs" / "twin.log").read_text()
        assert "alembic.runtime.migration" in log


SCRIPT = """
import logging, sys, warnings
from pathlib import Path
from cli.terminal import quiet_terminal

log_file = quiet_terminal("probe", Path(sys.argv[1]))
import ray  # adds its own stderr handler to the "ray" logger at import
logging.getLogger("ray").warning("ray driver warning")
logging.getLogger("ray.serve").addHandler(logging.StreamHandler())  # what serve.start does
logging.getLogger("ray.serve").info("Started Serve")
logging.getLogger("transformers.modeling_utils").warning("library warning")
warnings.warn("old keyword", FutureWarning)
logging.getLogger("twin.service").warning("our own warning")
logging.getLogger("twin.service").info("our own info")
logging.getLogger("litestar").error("a request failed")
print(log_file.path)
"""


def test_library_records_and_warnings_go_to_the_log_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], check=False, env=_env(tmp_path / "unused"),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Only what a person needs on the terminal: our own warning and a server's error.
    assert done.stderr.splitlines() == ["WARNING: our own warning", "ERROR: a request failed"]
    log_path = Path(done.stdout.strip())
    assert log_path == tmp_path / "logs" / "probe.log"
    log = log_path.read_text()
    for line in ("ray driver warning", "Started Serve", "library warning", "FutureWarning: old keyword",
                 "our own warning", "our own info", "a request failed"):
        assert line in log, line
