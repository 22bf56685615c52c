"""Every Ray entry point attaches to the cluster named by RAY_ADDRESS (or TWIN_SERVE__RAY_ADDRESS) and starts a
local Ray only when neither is set; a failed local start is cleaned up and retried.

A real Ray head (`ray start --head`) on this machine plays the cluster; what ran where is read back through
Ray's state API on that head's dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from twin.domain import Unavailable
from twin.ray_cluster import connect, local_ray_processes, ray_address, start_local_ray
from twin.settings import Settings

RAY_BIN = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Head:
    address: str
    dashboard: str
    node_id: str
    env: dict[str, str]
    temp_dir: str


def _head_processes(temp_dir: str, port: int) -> list[psutil.Process]:
    """The processes of the head started by this fixture (and their children): found by its own temp dir
    and port, so no other Ray on the machine is touched (`ray stop` would end every Ray of this user)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if temp_dir in cmdline or f":{port} " in cmdline + " ":
            found[proc.pid] = proc
            try:
                found.update({child.pid: child for child in proc.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
    found.pop(os.getpid(), None)
    return list(found.values())


def _reload_ray_auth() -> None:
    """Ray reads RAY_AUTH_MODE and the token once per process; read them again after the env changed."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _stop_head(temp_dir: str, port: int) -> None:
    procs = _head_processes(temp_dir, port)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _start_head(num_cpus: int, env: dict[str, str], attempts: int = 3) -> tuple[int, int, str]:
    """(GCS port, dashboard port, temp dir) of a started head. A start that fails (a port taken between
    choosing and binding it, a start-up timeout on a loaded machine) is stopped and tried again on new
    ports."""
    failures: list[str] = []
    for _ in range(attempts):
        port, dashboard_port = _free_port(), _free_port()
        # A short path: Ray's socket paths under it must stay within the 107-byte limit of AF_UNIX.
        temp_dir = tempfile.mkdtemp(prefix="twin-rayhead-", dir="/tmp")
        command = [
            str(RAY_BIN), "start", "--head", "--port", str(port), "--num-cpus", str(num_cpus),
            "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir, "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
            "--ray-client-server-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port()),
            "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port()),
        ]
        try:
            started = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                                     timeout=180, check=False)
            if started.returncode == 0:
                return port, dashboard_port, temp_dir
            failures.append((started.stdout + started.stderr)[-2000:])
        except subprocess.TimeoutExpired as exc:
            failures.append(f"ray start timed out: {exc}")
        print(f"ray start --head failed, retrying on new ports: {failures[-1]}")
        _stop_head(temp_dir, port)
    raise AssertionError(f"ray start --head failed {attempts} times:\n" + "\n---\n".join(failures))


@contextmanager
def running_head(num_cpus: int = 1) -> Iterator[Head]:
    """A real `ray start --head` on free 127.0.0.1 ports with its own temp dir and token, for this process's
    drivers (the token and the state API's address are set in this process's environment while it runs);
    stopped afterwards by its own processes alone. Shared with the training tests."""
    # Ray 2.60 turns token auth on for clusters it starts: give the head and the test's drivers one token,
    # through the environment (never ~/.ray).
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex}
    port, dashboard_port, temp_dir = _start_head(num_cpus, env)
    patch = pytest.MonkeyPatch()
    try:
        for key, value in env.items():
            patch.setenv(key, value)
        # Ray's state API prefers RAY_ADDRESS (set by some tests below) over its `address` argument
        patch.setenv("RAY_API_SERVER_ADDRESS", f"http://127.0.0.1:{dashboard_port}")
        _reload_ray_auth()
        from ray.util.state import list_nodes

        dashboard = f"http://127.0.0.1:{dashboard_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                (node,) = list_nodes(address=dashboard)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield Head(address=f"127.0.0.1:{port}", dashboard=dashboard, node_id=node.node_id, env=env,
                   temp_dir=temp_dir)
    finally:
        patch.undo()
        _reload_ray_auth()
        _stop_head(temp_dir, port)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[Head]:
    with running_head() as head:
        yield head


@pytest.fixture
def driver_env(ray_head: Head) -> Iterator[None]:
    import ray

    yield
    ray.shutdown()


def _actor_on(dashboard: str, name: str) -> list:
    from ray.util.state import list_actors

    return [a for a in list_actors(address=dashboard, filters=[("name", "=", name)], limit=1000)]


def test_ray_address_env_attaches_to_that_cluster(
    ray_head: Head, driver_env: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setenv("RAY_ADDRESS", ray_head.address)
    assert ray_address(settings) == ray_head.address
    assert connect(settings, local={"num_cpus": 1}) is False  # attached, not started: not ours to stop
    assert ray.get_runtime_context().get_node_id() == ray_head.node_id

    @ray.remote(num_cpus=0)
    class Probe:
        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    name = f"probe-{uuid.uuid4().hex[:8]}"
    probe = Probe.options(name=name).remote()
    assert ray.get(probe.node.remote()) == ray_head.node_id
    (seen,) = _actor_on(ray_head.dashboard, name)  # the head's own state API lists the actor
    assert seen.node_id == ray_head.node_id and seen.state == "ALIVE"


def test_the_setting_names_the_cluster_and_wins_over_ray_address(
    ray_head: Head, driver_env: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # nothing listens there
    settings.serve.ray_address = ray_head.address
    from ray import serve
    from ray.util.state import list_actors

    from serving.model import start_ray_and_serve

    assert start_ray_and_serve(settings) is False
    try:
        assert ray.get_runtime_context().get_node_id() == ray_head.node_id
        # Serve's controller runs on the cluster, not in a Ray of this process
        controllers = list_actors(address=ray_head.dashboard,
                                  filters=[("class_name", "=", "ServeController"), ("state", "=", "ALIVE")])
        assert controllers and controllers[0].node_id == ray_head.node_id
    finally:
        serve.shutdown()
        ray.shutdown()


def test_an_unreachable_cluster_says_which_and_what_to_check(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    with pytest.raises(Unavailable, match="Cannot reach the Ray cluster at 127.0.0.1:.*RAY_ADDRESS"):
        connect(settings)


def test_without_an_address_a_local_ray_of_our_own_starts(
    ray_head: Head, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster running on this machine is not picked up when nothing names it."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        assert connect(settings, local={"num_cpus": 1, "include_dashboard": False}) is True
        assert ray.get_runtime_context().get_node_id() != ray_head.node_id
        assert local_ray_processes(), "the local Ray's processes are this process's children"
    finally:
        ray.shutdown()


def test_a_failed_local_start_is_cleaned_up_and_retried(settings: Settings) -> None:
    """The first attempt really starts Ray's processes, then fails as a start-up timeout would: they are
    ended before the second attempt, which succeeds."""
    import ray

    first_attempt: list[int] = []

    def flaky_init(**kwargs: object) -> object:
        context = ray.init(**kwargs)
        if not first_attempt:
            first_attempt.extend(p.pid for p in local_ray_processes())
            raise RuntimeError("The current node timed out during startup.")
        return context

    try:
        start_local_ray(settings, init=flaky_init, num_cpus=1, include_dashboard=False)
        assert first_attempt and ray.is_initialized()
        now = {p.pid for p in local_ray_processes()}
        assert not now & set(first_attempt)
        assert not [pid for pid in first_attempt if psutil.pid_exists(pid)
                    and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    finally:
        ray.shutdown()


def test_a_local_start_that_keeps_failing_says_what_to_try(settings: Settings) -> None:
    settings.serve.ray_start_attempts = 2
    calls: list[int] = []

    def failing_init(**_: object) -> None:
        calls.append(1)
        raise TimeoutError("The current node timed out during startup.")

    with pytest.raises(Unavailable) as caught:
        start_local_ray(settings, init=failing_init)
    message = str(caught.value)
    assert len(calls) == 2 and "2 attempts" in message and "timed out during startup" in message
    assert "TWIN_SERVE__RAY_START_TIMEOUT_S" in message and "ray start --head" in message


def test_a_submitted_jobs_own_env_vars_are_left_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside `ray job submit --runtime-env-json '{"env_vars": {"HF_HUB_OFFLINE": "1"}}'` Ray refuses a driver
    whose ray.init repeats HF_HUB_OFFLINE; the driver leaves it to the job and keeps its other variables."""
    from twin.ray_cluster import _defer_to_job_env

    ours = {"runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "0", "TOKENIZERS_PARALLELISM": "false"}},
            "log_to_driver": False}
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    assert _defer_to_job_env(ours) == ours
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(
        {"runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1", "TWIN_DATA_DIR": "/data"}}}))
    assert _defer_to_job_env(ours) == {"runtime_env": {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}},
                                       "log_to_driver": False}
