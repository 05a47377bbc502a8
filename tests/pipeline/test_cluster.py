"""A build on a real multi-node Ray cluster whose nodes cannot import the project.

`ray start` processes make a head (no CPUs: no task lands there) and two worker nodes, each a
raylet of its own with a capped object store. Their Python is a second virtual environment
that sees `.venv`'s site-packages through a `.pth` line, but not the editable install (a
plain path line in a .pth file does not run the .pth files inside it), so `import pipeline`
fails there: the project's code reaches the workers only through Ray's runtime_env
(pipeline/executor.py `worker_packages`). The driver runs from a folder outside the project,
since Ray puts the driver's working directory on the workers' import path. The build must
give the bytes of a local build, and run.json must show tasks on both worker nodes.
(`ray.cluster_utils.Cluster` cannot show this: its nodes share the driver's interpreter.)
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
from pathlib import Path

import pytest

from tests.conftest import mit_license, program, write_tree
from tests.pipeline.test_build import free_port, output_bytes

WORKERS = 2


def bare_python(root: Path) -> Path:
    """A venv whose Python has the dependencies (the project's venv's site-packages) but not the project."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (site,) = (root / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = root / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import ray, duckdb, enry\ntry:\n import pipeline\nexcept ImportError:"
                            "\n print('bare')\nelse:\n print(pipeline.__file__)"], capture_output=True, text=True,
                           cwd=root)
    assert probe.stdout.strip() == "bare", probe.stdout + probe.stderr  # the test would prove nothing otherwise
    return python


def start(python: Path, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(python), "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
                             "--object-store-memory=80000000", *args], env=env, start_new_session=True,
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
    raise AssertionError(f"the cluster has {len(found)} worker nodes after {within} s, expected {expected}")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for the sources")
def test_a_cluster_whose_nodes_lack_the_project_builds_the_same_bytes(tmp_path):
    for number in range(6):
        write_tree(tmp_path / "src" / f"repo{number}", {"LICENSE": mit_license(f"Owner {number}"),
                                                       "main.py": program(number, 40),
                                                       "util.py": program(number + 10, 40)})
    outside = tmp_path / "driver"  # the driver's folder: not the project's
    outside.mkdir()
    config = outside / "config.toml"
    config.write_text(f'sources = ["{tmp_path / "src"}"]\n[execution]\nlocal_below_bytes = 0\n'
                      '[tokenize]\nvocab_size = 400\n')
    python = bare_python(tmp_path / "bare")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    nodes = [start(python, "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                   f"--temp-dir={temp}", env=env)]
    try:
        for number in range(1, WORKERS + 1):  # one at a time: raylets starting together time out on one machine
            nodes.append(start(python, f"--address={address}", "--num-cpus=1", env=env))
            workers = worker_nodes(python, address, env, outside, expected=number)
        command = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config)]
        on_cluster = subprocess.run([*command, "--out", str(tmp_path / "cluster"), "--ray-address", address],
                                    env=env, cwd=outside, capture_output=True, text=True, timeout=300)
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    assert on_cluster.returncode == 0, on_cluster.stderr
    run = json.loads((tmp_path / "cluster" / "manifest" / "run.json").read_text())
    assert run["executor"]["kind"] == "ray"
    ran_on = run["executor"]["tasks"]["nodes"]
    assert set(ran_on) == set(workers) and all(count > 0 for count in ran_on.values())  # every node worked
    local = subprocess.run([*command, "--out", str(tmp_path / "local"), "--executor", "local"], env=env,
                           cwd=outside, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    assert output_bytes(tmp_path / "cluster") == output_bytes(tmp_path / "local")
    assert run["counts"]["kept"] == 12
