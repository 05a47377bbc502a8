"""Executors run one function over many units: in-process, or as Ray tasks.

The stage logic never imports Ray; the executor is the only place that does. Ray tasks
(not Ray Data) because the unit of work is a repository of any size whose completion
marker makes resume possible; docs/ARCHITECTURE.md argues the choice.
"""

from __future__ import annotations

import importlib
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from corpus_core.errors import ConfigError
from corpus_core.urls import scrub_credentials

INFRASTRUCTURE_RETRIES = 2  # a worker that died is retried; an exception in our code is not
_END = object()
# The local Ray a driver starts outlives a driver killed with SIGKILL (OOM killer, `kill -9`):
# this watchdog holds a pipe from the driver and, when it closes without "done", ends them.
# It learns the processes below Ray's (agents, workers) every second while the driver
# lives: once the driver is gone, the raylet exits and its agents are orphans no tree shows.
_WATCHDOG = """
import os, select, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; this stays to clean up

def table():
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            found[int(entry)] = (int(fields[1]), fields[19])  # parent, start time
        except (OSError, ValueError, IndexError):
            pass
    return found

known = {}  # pid -> start time: a pid reused by another process is never killed
roots = [int(p) for p in sys.argv[1:]]
while True:
    now = table()
    todo = [pid for pid in roots if pid in now] + [pid for pid in known if pid in now]
    while todo:
        pid = todo.pop()
        if pid not in known:
            known[pid] = now[pid][1]
            todo += [child for child, (parent, _) in now.items() if parent == pid]
    if select.select([sys.stdin], [], [], 1.0)[0]:
        break
if sys.stdin.read() == "done":
    sys.exit(0)
for sig in (signal.SIGTERM, signal.SIGKILL):
    now = table()
    for pid, started in known.items():
        if pid in now and now[pid][1] == started:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    time.sleep(1)
"""


def worker_packages() -> list[str]:
    """The project's packages a worker imports: those of the unit task (pipeline.run) and of
    every stage in the flow, with all they import, derived from the code."""
    from pipeline.flow import STAGES
    from pipeline.layers import travelling_packages

    return travelling_packages(["pipeline.run", *(spec.cls.__module__ for spec in STAGES)])


@dataclass
class TaskUsage:
    """What the tasks cost, summed over every map: the build reports it in run.json, and the
    end-to-end benchmark derives the idle share of the workers from it."""

    tasks: int = 0
    seconds: float = 0.0  # wall time inside the tasks
    cpu_seconds: float = 0.0  # CPU time of the task's process while it ran (its threads too)
    peak_rss_bytes: int = 0  # the largest resident set of a worker process seen at a task's end
    nodes: dict[str, int] = field(default_factory=dict)  # Ray node id -> tasks it ran ("local": in-process)
    node_peak_rss_bytes: dict[str, int] = field(default_factory=dict)  # Ray node id -> its largest worker seen

    def add(self, measured: tuple[float, float, int, str]) -> None:
        self.tasks += 1
        self.seconds += measured[0]
        self.cpu_seconds += measured[1]
        self.peak_rss_bytes = max(self.peak_rss_bytes, measured[2])
        self.nodes[measured[3]] = self.nodes.get(measured[3], 0) + 1
        self.node_peak_rss_bytes[measured[3]] = max(self.node_peak_rss_bytes.get(measured[3], 0), measured[2])

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1), "nodes": dict(sorted(self.nodes.items())),
                "node_peak_rss_mb": {node: round(peak / 2**20, 1)
                                     for node, peak in sorted(self.node_peak_rss_bytes.items())}}


def peak_rss_bytes() -> int:
    """This process's peak resident set (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(fn: Callable[..., Any], item: Any, *args: Any) -> tuple[Any, tuple[float, float, int, str]]:
    """Run one task and measure it where it runs, naming the Ray node it ran on."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(item, *args)
    return result, (time.perf_counter() - wall, time.process_time() - cpu, peak_rss_bytes(), _node_id())


def _node_id() -> str:
    ray = sys.modules.get("ray")  # never imported for the local executor
    if ray is None or not ray.is_initialized():
        return "local"
    return ray.get_runtime_context().get_node_id()


class _Queue:
    """The items of a map: first what results asked for, then the lazily read input."""

    def __init__(self, items: Iterable[Any]):
        self._input = iter(items)
        self._added: deque[Any] = deque()

    def add(self, more: Iterable[Any] | None) -> None:
        self._added.extend(more or ())

    def next(self) -> Any:
        return self._added.popleft() if self._added else next(self._input, _END)


class LocalExecutor:
    name = "local"

    num_workers = 1

    def __init__(self) -> None:
        self.usage = TaskUsage()

    def map(self, fn: Callable[..., Any], items: Iterable[Any], args: tuple,
            on_result: Callable[[Any, Any], Iterable[Any] | None]) -> None:
        queue = _Queue(items)
        while (item := queue.next()) is not _END:
            result, usage = measured(fn, item, *args)
            self.usage.add(usage)
            queue.add(on_result(item, result))

    def shutdown(self) -> None:
        pass


class RayExecutor:
    name = "ray"

    def __init__(self, num_workers: int = 0, address: str | None = None, connect_timeout: float = 30.0):
        import ray

        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            check_reachable(address, connect_timeout)
        self._started = not ray.is_initialized()
        if self._started:
            if address:
                # the workers of a cluster import this project's code from the driver
                modules = [importlib.import_module(name) for name in worker_packages()]
                ray.init(address=address, runtime_env={"py_modules": modules}, logging_level="WARNING")
            else:
                # "local": a new instance even where `ray start` left a cluster address behind;
                # a local instance needs no cluster token in ~/.ray (see Ray's token auth)
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(address="local", num_cpus=num_workers or None, include_dashboard=False,
                         logging_level="WARNING")
                self._watchdog = _watch_local_ray(ray)
        self._ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.num_workers = num_workers or cpus
        self.usage = TaskUsage()

    def map(self, fn: Callable[..., Any], items: Iterable[Any], args: tuple,
            on_result: Callable[[Any, Any], Iterable[Any] | None]) -> None:
        """At most `num_workers` tasks in flight; results handed back as each one finishes.
        `items` is read lazily, so a generator of large items holds only those in flight.
        What `on_result` returns is more work (the other chunks of a big unit), run first."""
        ray = self._ray
        remote = ray.remote(max_retries=INFRASTRUCTURE_RETRIES, num_cpus=1)(measured)
        shared = [ray.put(arg) for arg in (fn, *args)]
        pending: dict[Any, Any] = {}
        queue = _Queue(items)
        while True:
            while len(pending) < self.num_workers and (item := queue.next()) is not _END:
                pending[remote.remote(shared[0], item, *shared[1:])] = item
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                result, usage = ray.get(ref)
                self.usage.add(usage)
                queue.add(on_result(pending.pop(ref), result))

    _watchdog: subprocess.Popen | None = None

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()
        if self._watchdog is not None:
            self._watchdog.communicate(b"done")
            self._watchdog = None


def _watch_local_ray(ray: Any) -> subprocess.Popen | None:
    """Start the watchdog over the processes of the local Ray instance this driver started."""
    node = getattr(ray._private.worker, "_global_node", None)
    pids = [str(info.process.pid) for infos in getattr(node, "all_processes", {}).values() for info in infos
            if getattr(info, "process", None) is not None]
    if not pids:
        return None
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, *pids], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check_reachable(address: str, timeout: float) -> None:
    """Fail within `timeout` seconds, with the address in the message, when nothing answers
    at a cluster's `[ray://]host:port`: ray.init itself retries for minutes and ignores
    Ctrl-C meanwhile. `auto` (the cluster `ray start` left on this machine) is not probed."""
    match = re.fullmatch(r"(?:ray://)?\[?(?P<host>[^\]/]+?)\]?:(?P<port>\d{1,5})/?", address.strip())
    if match is None:
        if address.strip() == "auto":
            return
        raise ConfigError(f"execution.ray_address = {scrub_credentials(address)!r}: expected host:port, "
                          "ray://host:port or auto")
    try:
        socket.create_connection((match["host"], int(match["port"])), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(f"no Ray cluster answers at {scrub_credentials(address)} within {timeout:g} s "
                          f"({err.strerror or err}); check the address (execution.ray_address, --ray-address, "
                          "RAY_ADDRESS) or run without one for a local Ray") from None


def make_executor(kind: str, num_workers: int, address: str | None,
                  connect_timeout: float = 30.0) -> LocalExecutor | RayExecutor:
    if kind == "local":
        return LocalExecutor()
    return RayExecutor(num_workers, address, connect_timeout)
