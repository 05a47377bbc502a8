"""Fixtures that generate small repositories, archives and datasets inside tmp_path."""

from __future__ import annotations

import io
import os
import random
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from filters.comments import CommentsConfig
from filters.quality import QualityConfig
from stages.language import LanguageConfig


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def make_tar(path: Path, members: list[tuple[str, bytes | str | None, dict]], mode: str = "w:gz") -> Path:
    """members: (name, data, tarinfo attributes); data None with type/linkname for links."""
    with tarfile.open(path, mode) as tar:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            payload = data.encode() if isinstance(data, str) else data
            info.size = len(payload) if payload is not None else 0
            info.mtime = 0
            for key, value in attrs.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def make_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return path


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_AUTHOR_DATE": "2020-01-01T00:00:00", "GIT_COMMITTER_DATE": "2020-01-01T00:00:00"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def make_git_repo(root: Path, commits: list[dict[str, str]]) -> Path:
    """A repository with one commit per dict of files (each commit adds or overwrites)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for number, files in enumerate(commits):
        write_tree(root, files)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"commit {number}")
    return root


PYTHON_FILE = "import os\n\n\ndef main():\n    # print the working directory\n    print(os.getcwd())\n"
C_FILE = "#include <stdio.h>\n\nint main(void) {\n    /* say hello */\n    printf(\"hello\\n\");\n    return 0;\n}\n"
JS_FILE = "'use strict';\n\nfunction add(a, b) {\n  // sum two numbers\n  return a + b;\n}\n\nmodule.exports = add;\n"


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the in-process builds of the whole session (starting one costs seconds)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


S3_BUCKET = "corpus-test"


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A moto S3 server on a free port, a bucket, and a function that makes URLs into it. The
    credentials and endpoint ride in the URL, so Ray's workers (and a cluster's nodes) need no
    environment of their own."""
    import contextlib
    import socket
    import sys
    import time

    import pyarrow.fs as pafs

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError(f"moto's S3 server did not answer on port {port}: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                          endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True).create_dir(S3_BUCKET)
        yield lambda prefix: (f"s3://test:test@{S3_BUCKET}/{prefix}"
                              f"?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1")
    finally:
        server.terminate()
        server.wait(timeout=30)


def mit_license(holder: str = "Jane Doe") -> str:
    return (
        f"MIT License\n\nCopyright (c) 2020 {holder}\n\n"
        "Permission is hereby granted, free of charge, to any person obtaining a copy\n"
        "of this software and associated documentation files (the \"Software\"), to deal\n"
        "in the Software without restriction, including without limitation the rights\n"
        "to use, copy, modify, merge, publish, distribute, sublicense, and/or sell\n"
        "copies of the Software, and to permit persons to whom the Software is\n"
        "furnished to do so, subject to the following conditions:\n\n"
        "The above copyright notice and this permission notice shall be included in all\n"
        "copies or substantial portions of the Software.\n\n"
        "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n"
        "IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\n"
        "FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\n"
        "AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\n"
        "LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,\n"
        "OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE\n"
        "SOFTWARE.\n"
    )


APACHE_NOTICE = (
    "Copyright 2021 The Authors\n\n"
    "Licensed under the Apache License, Version 2.0 (the \"License\");\n"
    "you may not use this file except in compliance with the License.\n"
    "You may obtain a copy of the License at\n\n"
    "    http://www.apache.org/licenses/LICENSE-2.0\n\n"
    "Unless required by applicable law or agreed to in writing, software\n"
    "distributed under the License is distributed on an \"AS IS\" BASIS,\n"
    "WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
    "See the License for the specific language governing permissions and\n"
    "limitations under the License.\n"
)

GPL3_HEADER = (
    "# This program is free software: you can redistribute it and/or modify\n"
    "# it under the terms of the GNU General Public License as published by\n"
    "# the Free Software Foundation, either version 3 of the License, or\n"
    "# (at your option) any later version.\n"
)


# code-like text for near-dedup tests: random statements over a small vocabulary
NAMES = ["total", "count", "items", "result", "value", "index", "buffer", "config", "record", "parser", "handler",
         "window", "offset", "length", "cursor", "target", "source", "reader", "writer", "status", "column", "header",
         "payload", "limit", "scale", "factor", "weight", "matrix", "vector", "node", "edge", "graph", "queue", "stack"]
CALLS = ["load", "parse", "merge", "split", "update", "compute", "render", "encode", "decode", "flush", "check"]
WORDS = ["the", "first", "next", "value", "when", "empty", "keep", "order", "skip", "last", "count", "again"]


def program(seed: int, lines: int = 120) -> str:
    """A Python-looking function of `lines` random statements and comments."""
    rng = random.Random(seed)
    out = [f"def {rng.choice(CALLS)}_{seed}({rng.choice(NAMES)}, {rng.choice(NAMES)}):"]
    for _ in range(lines):
        a, b, c = rng.sample(NAMES, 3)
        kind = rng.random()
        if kind < 0.2:
            out.append(f"    # {' '.join(rng.choices(WORDS, k=5))}")
        elif kind < 0.5:
            out.append(f"    {a} = {rng.choice(CALLS)}({b}, {c} + {rng.randint(0, 99)})")
        elif kind < 0.7:
            out.append(f"    if {a} > {b}:\n        {c} = {a} - {rng.randint(1, 9)}")
        else:
            out.append(f"    {a}.{rng.choice(CALLS)}({b}[{rng.randint(0, 9)}], {c})")
    out.append(f"    return {rng.choice(NAMES)}\n")
    return "\n".join(out)


def replace_lines(text: str, fraction: float, seed: int) -> str:
    rng = random.Random(seed)
    lines = text.split("\n")
    for i in rng.sample(range(1, len(lines) - 1), int(fraction * len(lines))):
        lines[i] = f"    {rng.choice(NAMES)}_{i} = {rng.choice(CALLS)}({rng.randint(100, 999)})"
    return "\n".join(lines)


# quality, comment-ratio and language-list rules off: for tests about other stages, whose tiny
# files would fail StarCoder's thresholds (tests/filters/ and tests/stages/test_language_policy.py
# test the rules themselves)
LENIENT = {  # every quality rule off: thresholds None, switches False
    "quality": QualityConfig(**{name: False if s.kind is bool else None
                                for name, s in QualityConfig.thresholds().items()}),
    "comments": CommentsConfig(min_comment_ratio=None, max_comment_ratio=None),
    "language": LanguageConfig(policy=False),
}
