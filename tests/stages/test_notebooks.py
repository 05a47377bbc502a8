"""Jupyter notebooks: the script and structured forms, a broken notebook's drop, a secret in
an output redacted, and marker text in a notebook that never becomes a control token."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord, SourceSpec
from corpus_core.tokens import EOS, SPECIAL_TOKENS
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.notebooks import CODE, NotebookConfig, NotebookConverter, parse_notebook, script, structured
from stages.tokenize import TokenizeConfig, encode_files, train_tokenizer
from tests.conftest import LENIENT, program

GITHUB = "ghp_" + "R7kq2LmZ8xWv4Tn0bPy6Hc3Js9Df5Ga1Qe7U"  # made up, random-looking: no live secret


def notebook(cells: list[dict], language: str | None = "python") -> str:
    metadata = {"kernelspec": {"name": "k", "language": language}} if language else {}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells})


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)}


def code(text: str, *outputs: dict) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": text, "outputs": list(outputs)}


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": [text]}


IMAGE = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo" + "A" * 3000}}

PLOT = notebook([
    md("# Loading data\nRead the table first."),
    code("import math\nprint(math.pi)\n", stream("3.14159265\n" * 100)),
    code("plot(x)", IMAGE),
])
SCRIPT = "# # Loading data\n# Read the table first.\n\nimport math\nprint(math.pi)\n\nplot(x)\n"
STRUCTURED = ("<jupyter_start><jupyter_text># Loading data\nRead the table first.<jupyter_code>import math\n"
              "print(math.pi)\n<jupyter_output>" + ("3.14159265\n" * 100)[:40]
              + "<jupyter_code>plot(x)<jupyter_output><empty_output>")
LITERAL = notebook([md("The marker `<jupyter_code>` starts a code cell."), code("s = '<jupyter_output>'\n")])
SECRET = notebook([md("Call the API."), code("print(token)\n", stream(f"token: {GITHUB}\n"))])


def convert(content: str, path: str = "nb.ipynb", **settings) -> FileRecord:
    record = FileRecord(repo="o/r", path=path, size=len(content), content=content, language="Jupyter Notebook")
    (record,) = NotebookConverter(NotebookConfig(max_output_chars=40, **settings)).run([record])
    return record


def test_script_form_comments_markdown_in_the_kernels_language():
    record = convert(PLOT)
    assert record.content == SCRIPT and record.notebook is None
    assert (record.language, record.language_type) == ("Python", "programming")
    scala, _ = parse_notebook(notebook([md("Sum"), code("val x = 1")], language=None), 40)
    assert script(scala, "Scala") == "// Sum\n\nval x = 1\n"
    assert convert(notebook([md("x")], language=None)).language is None  # left to the language list


def test_structured_form_truncates_outputs_drops_images_and_marks_empty_ones():
    record = convert(PLOT, form="structured")
    assert record.content == STRUCTURED and "iVBOR" not in record.content
    assert json.loads(record.notebook) == {"form": "structured", "markers": [10, 11, 12, 13, 12, 13, 14]}
    assert convert("{}", path="a.py").content == "{}"  # not a notebook: untouched


def test_a_literal_marker_is_text_in_the_markers_list():
    record = convert(LITERAL, form="structured")
    markers = json.loads(record.notebook)["markers"]
    assert markers == [10, 11, 0, 12, 0, 13, 14]
    text, _ = structured(parse_notebook(LITERAL, 40)[0])
    assert text == record.content


@pytest.mark.parametrize("content, detail", [
    ('{"cells": [', "invalid JSON: Expecting value: line 1 column 12 (char 11)"),
    ("[1, 2]", "a JSON list, not a notebook object"),
    ('{"metadata": {}}', "no list of cells"),
    ('{"cells": ["x"]}', "a cell is a JSON str, not an object"),
    # hostile ones: a lone surrogate no Parquet file can hold (it used to stop the whole build),
    # nesting past Python's recursion limit
    ('{"cells": [{"cell_type": "code", "source": "x = 1  # \\ud800", "outputs": []}]}',
     "a cell holds text that is not Unicode (a lone surrogate, surrogates not allowed)"),
    ("[" * 100_000, "invalid JSON: nested too deep"),
])
def test_a_broken_notebook_is_dropped_with_reason_and_detail(content, detail):
    record = convert(content)
    assert (record.decision, record.reason, record.detail, record.content) == ("dropped", "bad_notebook", detail, None)


def test_form_is_checked():
    with pytest.raises(ConfigError, match="notebooks.form = 'scripts'"):
        NotebookConfig(form="scripts")


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(iter([program(i) for i in range(5)] + [STRUCTURED] * 3), vocab_size=400)


def row(record: FileRecord) -> dict:
    return {"repo": "o/r", "path": "nb.ipynb", "stars": None, "id": "x", "content": record.content,
            "language": record.language, "notebook": record.notebook}


def test_markers_become_special_ids_from_the_structure_and_decode_to_the_markup(tokenizer):
    record = convert(PLOT, form="structured")
    (ids,) = encode_files(tokenizer, [row(record)], TokenizeConfig(metadata_probability=0.0))
    assert tokenizer.decode(ids, skip_special_tokens=False) == STRUCTURED + "<|endoftext|>"
    assert [i for i in ids if i < len(SPECIAL_TOKENS)] == [10, 11, 12, 13, 12, 13, 14, EOS]


def test_both_forms_encode_the_script_then_the_structured_form(tokenizer):
    record = convert(PLOT, form="both")
    assert record.content == STRUCTURED  # the row shows the structured form, the script is derived
    (ids,) = encode_files(tokenizer, [row(record)], TokenizeConfig(metadata_probability=0.0))
    assert tokenizer.decode(ids, skip_special_tokens=False) == SCRIPT + "<|endoftext|>" + STRUCTURED + "<|endoftext|>"


def test_marker_text_in_a_notebook_never_becomes_a_control_token(tokenizer):
    record = convert(LITERAL, form="structured")
    (ids,) = encode_files(tokenizer, [row(record)], TokenizeConfig(metadata_probability=0.0))
    assert ids.count(CODE) == 1  # the code cell's marker; the markdown's `<jupyter_code>` is text
    assert tokenizer.decode(ids, skip_special_tokens=False) == record.content + "<|endoftext|>"
    literal = tokenizer.encode("The marker `<jupyter_code>` starts a code cell.", add_special_tokens=False).ids
    assert CODE not in literal and ids[2:2 + len(literal)] == literal
    # markers that no longer line up (a redacted literal): the whole content is text
    broken = {**row(record), "notebook": json.dumps({"form": "structured", "markers": [10, 11, 12, 13, 14]})}
    (ids,) = encode_files(tokenizer, [broken], TokenizeConfig(metadata_probability=0.0))
    assert ids[:-1] == tokenizer.encode(record.content, add_special_tokens=False).ids and ids[-1] == EOS


@pytest.mark.parametrize("form", ["script", "structured"])
def test_a_build_redacts_secrets_in_outputs_and_drops_broken_notebooks(tmp_path, form):
    rows = [
        {"repo": "o/nb", "path": "plot.ipynb", "content": PLOT},
        {"repo": "o/nb", "path": "secret.ipynb", "content": SECRET},
        {"repo": "o/nb", "path": "broken.ipynb", "content": '{"cells": ['},
        {"repo": "o/nb", "path": "literal.ipynb", "content": LITERAL},
    ] + [{"repo": "o/code", "path": f"m{i}.py", "content": program(i, 20)} for i in range(3)]
    dataset = tmp_path / "files.jsonl"
    dataset.write_text("".join(json.dumps({**r, "license": "MIT"}) + "\n" for r in rows))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         notebooks=NotebookConfig(form=form, max_output_chars=200),
                         tokenize=TokenizeConfig(vocab_size=300, metadata_probability=0.0),
                         execution=ExecutionConfig(executor="local"))
    build(config, tmp_path / "out", Progress(quiet=True))
    files = {r["path"]: r for r in pq.read_table(tmp_path / "out" / "manifest" / "files").to_pylist()}
    assert (files["broken.ipynb"]["reason"], files["broken.ipynb"]["detail"]) == (
        "bad_notebook", "invalid JSON: Expecting value: line 1 column 12 (char 11)")
    assert files["plot.ipynb"]["language"] == "Python" and files["plot.ipynb"]["decision"] == "kept"
    shard = {r["path"]: r for r in pq.read_table(tmp_path / "out" / "shards" / "part-00000.parquet").to_pylist()}
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    secret = shard["secret.ipynb"]
    if form == "structured":
        assert "token: <KEY>" in secret["content"] and files["secret.ipynb"]["pii_key"] == 1
    assert GITHUB not in secret["content"] and GITHUB not in tokenizer.decode(secret["input_ids"])
    for name in ("plot.ipynb", "literal.ipynb", "secret.ipynb"):
        ids = shard[name]["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=False) == shard[name]["content"] + "<|endoftext|>"
        assert (CODE in ids) == (form == "structured")
    assert shard["literal.ipynb"]["input_ids"].count(CODE) == (1 if form == "structured" else 0)


def test_a_kernel_name_go_enry_does_not_know_is_no_language():
    """The metadata is the crawl's: a made-up or hostile kernel name never becomes a language."""
    cells = [{"cell_type": "code", "source": "x = 1", "outputs": []}]

    def language_of(name: str) -> str | None:
        text = json.dumps({"metadata": {"kernelspec": {"language": name}}, "cells": cells})
        return parse_notebook(text.replace("SURROGATE", "\\ud800"), 40)[1]

    for name in ("Made-Up-Lang", "<script>", "a" * 500, "pySURROGATE"):
        assert language_of(name) is None, name
    assert language_of("python") == "Python"
