"""`corpus inspect` tells a user, per file, the language and each stage's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from shlex import quote

from pipeline.cli import main
from tests.conftest import PYTHON_FILE, make_tar, mit_license, write_tree


def test_inspect_json_lines(tmp_path, capsys):
    repo = write_tree(tmp_path / "repo", {"a.py": PYTHON_FILE, "blob.bin": b"\x00\x01"})
    js = "// jane.roe@corp-mail.io\nvar x = 1;\nvar y = x + 2;\nconsole.log(x, y);\n"
    tar = make_tar(tmp_path / "p-1.tar.gz", [("p-1/x.js", js, {}), ("p-1/LICENSE", mit_license(), {})])
    assert main(["inspect", "--json", str(repo / "a.py"), str(repo / "blob.bin"), str(tar)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["path"].rsplit("/", 1)[-1], r["language"], r["license"], r["reason"]) for r in rows] == [
        ("a.py", "Python", None, "no_license"), ("blob.bin", None, None, "no_license"),
        ("x.js", "JavaScript", "MIT", None), ("LICENSE", "Text", "MIT", "license_text"),
    ]
    assert rows[0]["stages"] == {"ingest": "kept", "optout": "kept", "language": "kept", "notebooks": "kept",
                                 "license": "kept", "language_policy": "kept", "decontamination": "kept",
                                 "quality": "kept", "comments": "kept", "pii": "kept", "license_decision": "no_license"}
    assert rows[1]["stages"]["ingest"] == "binary" and rows[1]["detail"] == "also binary"
    assert rows[2]["license_source"] == "file:LICENSE"
    # the measures and the PII findings (offsets only, never the value)
    assert rows[0]["quality"]["comment_lexer"] == "tree-sitter-python" and rows[0]["quality"]["max_line_length"] == 33
    start = js.index("jane")
    assert rows[2]["pii"] == [{"type": "EMAIL", "start": start, "end": start + len("jane.roe@corp-mail.io")}]
    assert "jane.roe" not in json.dumps(rows)


def test_inspect_text_line_and_missing_path(tmp_path, capsys):
    write_tree(tmp_path / "coll" / "r", {"m.c": "/* entry */\nint main(void) { return 0; }\n"})
    assert main(["inspect", str(tmp_path / "coll")]) == 0
    assert capsys.readouterr().out.strip() == "r/m.c\tC\t-\t-\tdropped: no_license"
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_ray_address_where_nothing_listens_fails_within_the_timeout(tmp_path, capsys):
    import socket
    import time

    with socket.socket() as s:  # a loopback port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.py").write_text("a = 1\n")
    config = tmp_path / "c.toml"
    config.write_text("[execution]\nconnect_timeout_s = 5\n")
    started = time.monotonic()
    code = main(["build", "--config", str(config), "--out", str(tmp_path / "out"),
                 "--ray-address", f"ray://127.0.0.1:{port}", str(tmp_path / "repo")])
    assert code == 2 and time.monotonic() - started < 60  # not ray.init's minutes of retries
    assert f"no Ray cluster answers at ray://127.0.0.1:{port} within 5 s" in capsys.readouterr().err


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    script = ("import sys\nfrom pipeline.cli import main\n"
              "sys.argv = ['corpus', 'optout', 'list', '--registry', sys.argv[1]]\nsys.exit(main(sys.argv[1:]))\n")
    registry = tmp_path / "optout.jsonl"
    registry.write_text("".join(
        f'{{"kind": "repo", "value": "owner/repo{i}", "requested_by": "a@b.c", "requested_at": "2026-01-01"}}\n'
        for i in range(20_000)))
    shell = f"{sys.executable} -c {quote(script)} {registry} | head -1"
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.returncode == 0, done.stderr
