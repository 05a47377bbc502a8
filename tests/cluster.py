"""A real multi-node Ray cluster on one machine, for tests/pipeline/test_cluster.py and bench/scale.py.

`ray start` processes make a head (no CPUs: no task lands there) and worker nodes, each a
raylet of its own with a capped object store. Their Python is a second virtual environment
that sees `.venv`'s site-packages through a `.pth` line, but not the editable install (a
plain path line in a .pth file does not run the .pth files inside it), so `import pipeline`
fails there: the project's code reaches the workers only through Ray's runtime_env
(pipeline/executor.py `worker_packages`). A driver must run from a folder outside the
project, since Ray puts the driver's working directory on the workers' import path.
(`ray.cluster_utils.Cluster` cannot do this: its nodes share the driver's interpreter.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.pipeline.test_build import free_port

OBJECT_STORE_BYTES = 80_000_000  # per node: small, so that a build that leans on the object store shows it


@dataclass(frozen=True)
class Cluster:
    address: str  # host:port of the head, for `--ray-address`
    env: dict[str, str]  # the environment drivers must run with (no RAY_ADDRESS, no PYTHONPATH)
    python: Path  # the bare venv's interpreter: Ray's, without the project
    workers: list[str]  # Ray node ids of the worker nodes, in the order they started
    processes: list[subprocess.Popen]  # `ray start --block` of the head, then of each worker node
    temp: Path  # Ray's temp dir (sessions, logs, spilled objects)


def bare_python(root: Path) -> Path:
    """A venv whose Python has the dependencies (the project's venv's site-packages) but not the project."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (site,) = (root / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = root / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import ray, duckdb, enry\ntry:\n import pipeline\nexcept ImportError:"
                            "\n print('bare')\nelse:\n print(pipeline.__file__)"], capture_output=True, text=True,
                           cwd=root)
    if probe.stdout.strip() != "bare":  # a cluster that can import the project proves nothing
        raise RuntimeError(f"the bare venv at {root} imports the project or lacks Ray: {probe.stdout}{probe.stderr}")
    return python


def start(python: Path, *args: str, env: dict, object_store_bytes: int = OBJECT_STORE_BYTES) -> subprocess.Popen:
    """One `ray start --block` node, in a session of its own (its pid is the session id of its processes)."""
    return subprocess.Popen([str(python), "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
                             f"--object-store-memory={object_store_bytes}", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def worker_nodes(python: Path, address: str, env: dict, cwd: Path, expected: int, within: float = 180) -> list[str]:
    """The ids of the alive nodes with CPUs, once there are `expected` of them."""
    script = (f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
              "print(json.dumps(sorted(n['NodeID'] for n in ray.nodes() if n['Alive'] and n['Resources'].get('CPU'))))")
    deadline = time.monotonic() + within
    found: list[str] = []
    while time.monotonic() < deadline:
        done = subprocess.run([str(python), "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=120)
        if done.returncode == 0:
            found = json.loads(done.stdout.strip().splitlines()[-1])
            if len(found) == expected:
                return found
        time.sleep(1)
    raise RuntimeError(f"the cluster has {len(found)} worker nodes after {within} s, expected {expected}")


@contextmanager
def local_cluster(root: Path, driver_dir: Path, workers: int = 2, cpus_per_worker: int = 1,
                  object_store_bytes: int = OBJECT_STORE_BYTES) -> Iterator[Cluster]:
    """A CPU-less head and `workers` worker nodes (their bare venv under `root`), stopped on exit.
    `driver_dir` (outside the project) is where the nodes are probed from, as drivers must run."""
    python = bare_python(root / "bare")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    nodes = [start(python, "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                   f"--temp-dir={temp}", env=env, object_store_bytes=object_store_bytes)]
    try:
        started: list[str] = []
        for number in range(1, workers + 1):  # one at a time: raylets starting together time out on one machine
            nodes.append(start(python, f"--address={address}", f"--num-cpus={cpus_per_worker}", env=env,
                               object_store_bytes=object_store_bytes))
            found = worker_nodes(python, address, env, driver_dir, expected=number)
            started += [node for node in found if node not in started]
        yield Cluster(address, env, python, started, nodes, temp)
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
