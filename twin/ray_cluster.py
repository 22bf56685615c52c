"""How every entry point reaches Ray: the cluster named by ``TWIN_SERVE__RAY_ADDRESS`` or ``RAY_ADDRESS``,
else a local Ray of this process's own.

``ray.init(address="local")`` ignores ``RAY_ADDRESS`` (Ray honours it only for ``None``/``"auto"``), so a
`twin train` submitted with ``ray job submit`` would train on a fresh one-node Ray inside its driver; and
``ray.init()`` without an address attaches to whichever cluster was started last on this machine
(``/tmp/ray/ray_current_cluster``), even another service's. Hence: an explicit address when one is named,
``"local"`` otherwise.

Starting a local Ray can time out on a loaded machine (Ray waits a fixed 30 s for its raylet to register):
:func:`start_local_ray` kills what a failed attempt left behind and tries again until the start-up
allowance (``serve.ray_start_timeout_s``) is spent, then says what to try.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twin.domain import Unavailable

if TYPE_CHECKING:
    from twin.settings import Settings

log = logging.getLogger(__name__)


def ray_address(settings: Settings) -> str | None:
    """The cluster to attach to: the setting, else ``RAY_ADDRESS`` (what `ray job submit` sets for its
    driver); None means start a local Ray."""
    return settings.serve.ray_address or os.environ.get("RAY_ADDRESS") or None


def _unreachable(address: str, reason: object) -> Unavailable:
    return Unavailable(
        f"Cannot reach the Ray cluster at {address}: {reason}. Check `ray status --address {address}`, "
        "and RAY_ADDRESS or TWIN_SERVE__RAY_ADDRESS (unset both to start a local Ray)."
    )


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nothing listens on: Ray itself retries for minutes, then exits the
    process."""
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray looks the cluster up itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise _unreachable(address, exc) from exc


def _submitted_job_env_vars() -> set[str]:
    """The environment variables the runtime env of the Ray job this driver runs in sets (``ray job submit
    --runtime-env-json``); none outside a submitted job."""
    import json

    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # what Ray's job supervisor hands its driver
    if not raw:
        return set()
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return set()
    return set(runtime_env.get("env_vars") or {})


def _defer_to_job_env(init_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Leave out the ``env_vars`` the submitted job's runtime env already sets: Ray refuses a driver whose
    ``ray.init(runtime_env=...)`` names a variable the job's does, and the user's value is the one to keep."""
    runtime_env = init_kwargs.get("runtime_env")
    taken = _submitted_job_env_vars()
    if not taken or not runtime_env or not runtime_env.get("env_vars"):
        return init_kwargs
    env_vars = {k: v for k, v in runtime_env["env_vars"].items() if k not in taken}
    return {**init_kwargs, "runtime_env": {**runtime_env, "env_vars": env_vars}}


def attach(address: str, **init_kwargs: Any) -> None:
    """Connect this process to the Ray cluster at ``address`` (``host:port``, ``ray://...`` or ``auto``)."""
    import ray

    _check_reachable(address)
    init_kwargs = _defer_to_job_env(init_kwargs)
    try:
        ray.init(address=address, **init_kwargs)
    except (Exception, SystemExit) as exc:
        raise _unreachable(address, exc) from exc


def connect(settings: Settings, *, local: dict[str, Any] | None = None, **init_kwargs: Any) -> bool:
    """Attach to the configured cluster, or start a local Ray (``local``: extra ``ray.init`` arguments
    for that case only, e.g. ``num_cpus``). A Ray already initialised in this process is reused.

    Returns True when this call started a local Ray (the caller owns it and shuts it down). Worker and
    replica output goes to Ray's log files (``/tmp/ray/session_latest/logs``), not this terminal, unless a
    caller passes ``log_to_driver=True``.
    """
    import ray

    if ray.is_initialized():
        return False
    init_kwargs.setdefault("log_to_driver", False)
    address = ray_address(settings)
    if address:
        attach(address, **init_kwargs)
        return False
    start_local_ray(settings, **init_kwargs, **(local or {}))
    return True


def _session_pattern(pid: int) -> re.Pattern[str]:
    # Ray names a session started by ray.init after the date and the starting process's pid.
    return re.compile(rf"session_\d{{4}}-\d{{2}}-\d{{2}}_\d{{2}}-\d{{2}}-\d{{2}}_\d+_{pid}(?:\b|/)")


def local_ray_processes() -> list[Any]:
    """This process's descendants that belong to a Ray it started (GCS, raylet, dashboard, workers)."""
    import psutil

    me = psutil.Process()
    pattern = _session_pattern(me.pid)
    found = []
    for proc in me.children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if pattern.search(cmdline) or cmdline.startswith("ray::"):
            found.append(proc)
    return found


def clean_up_failed_start(grace_s: float = 10.0) -> int:
    """Stop what a failed local start left running; returns how many processes had to be ended."""
    import psutil
    import ray

    try:
        ray.shutdown()
    except Exception:
        log.debug("ray.shutdown after a failed start raised", exc_info=True)
    leftovers = local_ray_processes()
    for proc in leftovers:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(leftovers, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(leftovers)


def start_local_ray(settings: Settings, init: Callable[..., Any] | None = None, **init_kwargs: Any) -> None:
    """Start a local Ray, retrying a failed start (after cleaning it up) within the start-up allowance.

    ``init`` is ``ray.init`` unless a caller wraps it.
    """
    import ray

    init = init or ray.init
    allowance = settings.serve.ray_start_timeout_s
    attempts = max(1, settings.serve.ray_start_attempts)
    deadline = time.monotonic() + allowance
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            init(address="local", **init_kwargs)
            return
        except Exception as exc:  # noqa: BLE001 - each failure is retried, then reported together
            errors.append(f"attempt {attempt} ({time.monotonic() - started:.0f} s): {exc}")
            ended = clean_up_failed_start()
            log.warning("local Ray failed to start (attempt %d of %d, %d leftover processes ended): %s",
                        attempt, attempts, ended, exc)
        if attempt < attempts and time.monotonic() + 2.0 * attempt < deadline:
            time.sleep(2.0 * attempt)  # let the load that slowed this attempt pass
        else:
            break
    raise Unavailable(
        f"Could not start a local Ray ({len(errors)} attempts, start-up allowance {allowance:.0f} s): "
        + "; ".join(errors)
        + ". The machine may be too busy: stop other heavy programs and retry, raise "
        "TWIN_SERVE__RAY_START_ATTEMPTS or TWIN_SERVE__RAY_START_TIMEOUT_S, lower TWIN_SERVE__RAY_NUM_CPUS, "
        "or start Ray yourself (`ray start --head`) and point RAY_ADDRESS (or TWIN_SERVE__RAY_ADDRESS) at it."
    )
