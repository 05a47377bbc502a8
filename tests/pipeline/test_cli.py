"""`corpus inspect` tells a user, per file, the language and each stage's verdict."""

from __future__ import annotations

import json

from pipeline.cli import main
from tests.conftest import PYTHON_FILE, make_tar, mit_license, write_tree


def test_inspect_json_lines(tmp_path, capsys):
    repo = write_tree(tmp_path / "repo", {"a.py": PYTHON_FILE, "blob.bin": b"\x00\x01"})
    js = "// jane.roe@corp-mail.io\nvar x = 1;\nvar y = x + 2;\nconsole.log(x, y);\n"
    tar = make_tar(tmp_path / "p-1.tar.gz", [("p-1/x.js", js, {}), ("p-1/LICENSE", mit_license(), {})])
    assert main(["inspect", "--json", str(repo / "a.py"), str(repo / "blob.bin"), str(tar)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["path"].rsplit("/", 1)[-1], r["language"], r["license"], r["reason"]) for r in rows] == [
        ("a.py", "Python", None, "no_license"), ("blob.bin", None, None, "binary"),
        ("x.js", "JavaScript", "MIT", None), ("LICENSE", "Text", "MIT", None),
    ]
    assert rows[0]["stages"] == {"ingest": "kept", "optout": "kept", "language": "kept", "license": "kept",
                                 "quality": "kept", "comments": "kept", "pii": "kept", "license_decision": "no_license"}
    assert rows[1]["stages"]["ingest"] == "binary" and set(rows[1]["stages"].values()) == {"binary", "not run"}
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
