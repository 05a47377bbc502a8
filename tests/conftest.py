"""Fixtures that generate small repositories, archives and datasets inside tmp_path."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest


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
