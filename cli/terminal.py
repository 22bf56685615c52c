"""What reaches the terminal: our own warnings and errors, progress bars and results. Library logs (Ray,
transformers, httpx, crawl4ai...) and Python warnings (FutureWarning and the like) go to
``<data_dir>/logs/<name>.log`` instead: kept, not deleted, one place to look when something goes wrong.

Ray's workers and replicas write to Ray's own log files (``log_to_driver=False``, `twin.ray_cluster`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

OWN_PACKAGES = ("agents", "cli", "demo", "evals", "ingestion", "serving", "tools", "training", "twin")
SERVER_PACKAGES = ("litestar", "uvicorn")
"""Their errors (a request that failed) reach the terminal too."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d %(threadName)s]: %(message)s"
FILE_ONLY_LOGGERS = ("ray", "ray.serve")
"""Loggers that get their own stderr handler (and stop propagating): Ray adds one to "ray" at
``import ray`` and Serve one to "ray.serve" at ``serve.start``, so their lines would reach the terminal
whatever the root logger says."""


class DataDirLogFile(logging.Handler):
    """Appends to ``<data_dir>/logs/<name>.log``; the data dir (and so the settings) is read at the first
    record, so a command that logs nothing (``twin --help``) never loads the settings."""

    def __init__(self, name: str, data_dir: Path | None = None, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.log_name = name
        self.data_dir = data_dir
        self._file: logging.FileHandler | None = None
        self._no_settings = False
        """The settings do not validate: there is no data dir to log to, and the command reports why itself."""
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    @property
    def path(self) -> Path:
        if self.data_dir is None:
            from twin.settings import get_settings

            self.data_dir = get_settings().data_dir
        return self.data_dir / "logs" / f"{self.log_name}.log"

    def emit(self, record: logging.LogRecord) -> None:
        if self._no_settings:
            return
        try:
            if self._file is None:
                try:
                    path = self.path
                except ValueError:  # pydantic's ValidationError: printed as the command's own error, once
                    self._no_settings = True
                    return
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = logging.FileHandler(path, encoding="utf-8")
                self._file.setFormatter(self.formatter)
            self._file.emit(record)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


class _ForTerminal(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        package = record.name.split(".", 1)[0]
        return package in OWN_PACKAGES or (package in SERVER_PACKAGES and record.levelno >= logging.ERROR)


class _FileOnlyLogger(logging.Logger):
    """A library logger that refuses console handlers and always propagates: its records reach the log
    file through the root logger, never the terminal directly."""

    def addHandler(self, hdlr: logging.Handler) -> None:
        if isinstance(hdlr, logging.StreamHandler) and not isinstance(hdlr, logging.FileHandler):
            return
        super().addHandler(hdlr)

    @property  # type: ignore[override]
    def propagate(self) -> bool:
        return True

    @propagate.setter
    def propagate(self, _: bool) -> None:
        return None


def _file_only(name: str) -> None:
    manager = logging.Logger.manager
    existing = manager.loggerDict.get(name)
    if isinstance(existing, logging.Logger):  # the library is imported already: strip what it attached
        for handler in list(existing.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                existing.removeHandler(handler)
        existing.propagate = True
        return
    previous = manager.loggerClass
    manager.setLoggerClass(_FileOnlyLogger)
    try:
        logging.getLogger(name)
    finally:
        manager.loggerClass = previous


def quiet_terminal(name: str, data_dir: Path | None = None) -> DataDirLogFile:
    """Route logging for an entry point: everything at INFO and above to the log file; our own warnings and
    errors (and a server's errors) also to stderr; library records and Python warnings only to the file.
    Returns the file handler (its ``path`` says where the log is)."""
    log_file = DataDirLogFile(name, data_dir)
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    terminal.addFilter(_ForTerminal())
    terminal.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(log_file)
    root.addHandler(terminal)
    root.setLevel(logging.INFO)
    for logger_name in FILE_ONLY_LOGGERS:
        _file_only(logger_name)
    # Each distinct warning once in the file (torch and transformers repeat theirs on every model load).
    warnings.simplefilter("once", FutureWarning)
    warnings.simplefilter("once", DeprecationWarning)
    logging.captureWarnings(True)
    return log_file
