"""A build on a real multi-node Ray cluster whose nodes cannot import the project.

tests/cluster.py starts it: a CPU-less head and two worker nodes, each a raylet of its own
with a capped object store, whose Python sees the dependencies but not the project, so the
project's code reaches the workers only through Ray's runtime_env; the driver runs from a
folder outside the project. The build must give the bytes of a local build, and run.json
must show tasks on both worker nodes; so must the same build published to an object store
(a moto S3 server), with the license cache there too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from corpus_core.locations import Store
from tests.cluster import local_cluster
from tests.conftest import mit_license, program, write_tree
from tests.pipeline.test_build import output_bytes

WORKERS = 2


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for the sources")
def test_a_cluster_whose_nodes_lack_the_project_builds_the_same_bytes(tmp_path, s3):
    for number in range(6):
        write_tree(tmp_path / "src" / f"repo{number}", {"LICENSE": mit_license(f"Owner {number}"),
                                                       "main.py": program(number, 40),
                                                       "util.py": program(number + 10, 40)})
    outside = tmp_path / "driver"  # the driver's folder: not the project's
    outside.mkdir()
    config = outside / "config.toml"
    config.write_text(f'sources = ["{tmp_path / "src"}"]\n[execution]\nlocal_below_bytes = 0\n'
                      '[tokenize]\nvocab_size = 400\n')
    command = [sys.executable, "-m", "pipeline.cli", "build", "--config", str(config)]
    with local_cluster(tmp_path, outside, workers=WORKERS) as cluster:
        on_cluster = subprocess.run([*command, "--out", str(tmp_path / "cluster"), "--ray-address", cluster.address],
                                    env=cluster.env, cwd=outside, capture_output=True, text=True, timeout=300)
        assert on_cluster.returncode == 0, on_cluster.stderr
        # the same build published to an object store, its nodes sharing ScanCode's results there too
        stored = outside / "stored.toml"
        stored.write_text(config.read_text().replace("[execution]\n", f'[execution]\nlicense_cache = "{s3("lc")}"\n'))
        to_store = subprocess.run([*command[:-1], str(stored), "--out", s3("cluster"), "--ray-address",
                                   cluster.address], env=cluster.env, cwd=outside, capture_output=True, text=True,
                                  timeout=300)
        assert to_store.returncode == 0, to_store.stderr
    run = json.loads((tmp_path / "cluster" / "manifest" / "run.json").read_text())
    assert run["executor"]["kind"] == "ray"
    ran_on = run["executor"]["tasks"]["nodes"]
    assert set(ran_on) == set(cluster.workers) and all(count > 0 for count in ran_on.values())  # every node worked
    peaks = run["executor"]["tasks"]["node_peak_rss_mb"]
    assert set(peaks) == set(cluster.workers) and all(mb > 50 for mb in peaks.values())  # a Python worker's size
    local = subprocess.run([*command, "--out", str(tmp_path / "local"), "--executor", "local"], env=cluster.env,
                           cwd=outside, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    assert output_bytes(tmp_path / "cluster") == output_bytes(tmp_path / "local")
    assert run["counts"]["kept"] == 12
    store, expected = Store(s3("cluster")), output_bytes(tmp_path / "local")
    assert {name: store.read_bytes(name) for name in expected} == expected
    stored_run = json.loads(store.read_bytes("manifest/run.json"))
    assert set(stored_run["executor"]["tasks"]["nodes"]) == set(cluster.workers)
    assert len([e for e in Store(s3("lc")).list(recursive=True) if e.name.endswith(".json")]) >= 6  # the notices
