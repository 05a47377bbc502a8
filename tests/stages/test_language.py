"""go-enry labels languages and flags; the stage never drops."""

from __future__ import annotations

import pytest

from corpus_core.records import FileRecord
from stages.language import LanguageConfig, LanguageDetector


def labelled(path: str, content: str) -> FileRecord:
    record = FileRecord(repo="r", path=path, size=len(content), content=content)
    (out,) = LanguageDetector(LanguageConfig()).run([record])
    return out


@pytest.mark.parametrize("path, content, language, kind", [
    ("pkg/mod.py", "import os\nprint(os.name)\n", "Python", "programming"),
    ("yaml/_yaml.pyx", "cdef class Parser:\n    cdef int x\n", "Cython", "programming"),
    ("include/vec.hpp", "#include <vector>\nclass V { std::vector<int> v; };\n", "C++", "programming"),
    ("bin/n", "#!/usr/bin/env bash\necho hello\n", "Shell", "programming"),
    ("src/lib.rs", "fn main() { println!(\"hi\"); }\n", "Rust", "programming"),
    ("index.d.ts", "export declare function f(x: number): string;\n", "TypeScript", "programming"),
    ("package.json", '{"name": "x"}\n', "JSON", "data"),
])
def test_languages(path, content, language, kind):
    record = labelled(path, content)
    assert (record.language, record.language_type) == (language, kind)
    assert record.kept


def test_flags():
    assert labelled("node_modules/left-pad/index.js", "module.exports = 1;\n").vendored is True
    assert labelled("dist/app.min.js", "var a=1;" * 200).generated is True
    assert labelled("docs/guide.md", "# Guide\n").documentation is True
    assert labelled("tsconfig.json", "{\"compilerOptions\": {}}\n").configuration is True
    plain = labelled("src/app.py", "x = 1\n")
    assert (plain.vendored, plain.generated, plain.documentation, plain.configuration) == (False,) * 4


def test_unknown_language_is_none_and_kept():
    record = labelled("data/weird.zzz", "qwerty\n")
    assert record.language is None and record.kept
