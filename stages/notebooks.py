"""Jupyter notebooks as StarCoder used them: a `.ipynb` file's JSON is parsed right after the
language stage (raw JSON, with its base64 images, would trip the quality filters) and kept
as text the later stages filter and redact like any other file.

Forms (`[notebooks] form`):
- "script": markdown cells become comments of the kernel's language, code cells code;
  outputs are left out. The record is then an ordinary file.
- "structured": StarCoder's `<jupyter_start><jupyter_text>MD<jupyter_code>CODE
  <jupyter_output>OUT ...` markup, outputs cut to `max_output_chars`, images dropped,
  `<empty_output>` for a code cell without text output.
- "both": the structured content, and the tokenizer encodes the script (derived from the
  same cells) then the structured form, each ended by `<|endoftext|>`: one row per file, so
  ids, lookup, opt-out and the audit stay per file.

The markers must become special-token ids from the parsed structure, never from text: a
notebook may hold the string `<jupyter_code>` itself. `content` shows the markers as text
(readable, and what PII redaction sees, outputs included); the column `notebook` holds
`{"form": "structured"|"both", "markers": [...]}`: for each marker-looking string in
`content`, in order, the special id it is (0: the notebook's own text). Redaction never
writes marker text, so the list still lines up; when it does not (a redacted span
swallowed a literal one) the tokenizer encodes the whole content as text, never guessing
a control token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import enry

from corpus_core import reasons
from corpus_core.errors import ConfigError
from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import FileStage
from corpus_core.tokens import SPECIAL_TOKENS

BAD_NOTEBOOK = reasons.register(
    "bad_notebook", "notebooks", "a `.ipynb` file that is not a notebook: invalid JSON, or no list of cells; "
    "`detail` says what was wrong")

FORMS = ("script", "structured", "both")
START, TEXT, CODE, OUTPUT, EMPTY = (SPECIAL_TOKENS.index(f"<{name}>") for name in
                                    ("jupyter_start", "jupyter_text", "jupyter_code", "jupyter_output",
                                     "empty_output"))
# every marker-looking string in a structured content, real or the notebook's own text
MARKER_TEXT = re.compile("|".join(re.escape(SPECIAL_TOKENS[i]) for i in (START, TEXT, CODE, OUTPUT, EMPTY)))

# the line comment of a kernel's language (go-enry's names); "#" for any other
LINE_COMMENTS = {
    "//": ("Scala", "JavaScript", "TypeScript", "C", "C++", "C#", "Java", "Go", "Rust", "Kotlin", "F#", "Swift",
           "Groovy", "Dart"),
    "--": ("Haskell", "SQL", "Lua"),
    ";": ("Clojure", "Common Lisp", "Scheme"),
    "%": ("MATLAB", "Octave", "Prolog"),
}
COMMENT_OF = {language: prefix for prefix, languages in LINE_COMMENTS.items() for language in languages}
KERNEL_NAMES = {"python3": "Python", "python2": "Python", "ir": "R", "bash": "Shell", "sh": "Shell", "c++": "C++",
                "cpp": "C++", "csharp": "C#", "c#": "C#", "matlab": "MATLAB", "octave": "MATLAB",
                "javascript": "JavaScript", "typescript": "TypeScript"}


@dataclass(frozen=True)
class NotebookConfig(Settings):
    section = "notebooks"

    enabled: bool = setting(True, "false: a .ipynb file stays its raw JSON (and is filtered as such)")
    form: str = setting("script", "script (markdown as comments, code as code), structured (StarCoder's "
                        "<jupyter_*> markup with outputs) or both (one row: the structured content; its tokens "
                        "are the script, then the structured form)")
    max_output_chars: int = setting(500, "characters of a code cell's text output kept (structured form)")

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ConfigError(f"notebooks.form = {self.form!r}: expected one of {', '.join(FORMS)}")
        if self.max_output_chars < 0:
            raise ConfigError(f"notebooks.max_output_chars = {self.max_output_chars!r}: expected >= 0")


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code" (raw cells are kept as markdown)
    text: str
    output: str | None = None  # code cells: text outputs joined, truncated; "" when none


class NotebookError(ValueError):
    """Not a notebook; the message is the drop's detail."""


def _text(value: Any) -> str:
    """nbformat stores multi-line strings as a list of lines or as one string."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _output_text(outputs: Any, limit: int) -> str:
    """The text of a code cell's outputs: streams, text/plain results, errors; images and
    other rich data are left out."""
    texts = []
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(_text(output.get("text")))
        elif kind in ("execute_result", "display_data", "pyout"):
            data = output.get("data") if isinstance(output.get("data"), dict) else output
            texts.append(_text(data.get("text/plain", data.get("text"))))
        elif kind in ("error", "pyerr"):
            texts.append(f"{output.get('ename', '')}: {output.get('evalue', '')}\n")
    return "".join(texts)[:limit]


def parse_notebook(content: str, max_output_chars: int) -> tuple[list[Cell], str | None]:
    """The cells and the kernel's language (go-enry's name, None when the notebook names none)."""
    try:
        notebook = json.loads(content)
    except json.JSONDecodeError as err:
        raise NotebookError(f"invalid JSON: {err}") from err
    except RecursionError as err:  # `[[[[…` nested past Python's limit
        raise NotebookError("invalid JSON: nested too deep") from err
    if not isinstance(notebook, dict):
        raise NotebookError(f"a JSON {type(notebook).__name__}, not a notebook object")
    raw_cells = notebook.get("cells")
    if raw_cells is None and isinstance(notebook.get("worksheets"), list):  # nbformat 3
        raw_cells = [c for sheet in notebook["worksheets"] if isinstance(sheet, dict)
                     and isinstance(sheet.get("cells") or [], list) for c in sheet.get("cells") or []]
    if not isinstance(raw_cells, list):
        raise NotebookError("no list of cells")
    cells = []
    for raw in raw_cells:
        if not isinstance(raw, dict):
            raise NotebookError(f"a cell is a JSON {type(raw).__name__}, not an object")
        if raw.get("cell_type") == "code":
            source = _text(raw.get("source", raw.get("input")))
            cells.append(Cell("code", source, _output_text(raw.get("outputs"), max_output_chars)))
        else:
            cells.append(Cell("markdown", _text(raw.get("source"))))
    for cell in cells:  # JSON's \ud800 escapes decode to lone surrogates, which no output can hold
        for text in (cell.text, cell.output or ""):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise NotebookError(f"a cell holds text that is not Unicode (a lone surrogate, {err.reason})") from err
    return cells, kernel_language(notebook.get("metadata"))


def kernel_language(metadata: Any) -> str | None:
    """metadata.kernelspec.language, else language_info.name (or its file extension), as go-enry names it."""
    if not isinstance(metadata, dict):
        return None
    spec = metadata.get("kernelspec") if isinstance(metadata.get("kernelspec"), dict) else {}
    info = metadata.get("language_info") if isinstance(metadata.get("language_info"), dict) else {}
    for name in (spec.get("language"), info.get("name")):
        if isinstance(name, str) and name.strip():
            return _enry_name(name.strip())
    extension = info.get("file_extension")
    if isinstance(extension, str) and extension:
        return enry.get_language_by_extension("x" + extension).language or None
    return None


def _enry_name(name: str) -> str | None:
    """go-enry's name of a kernel's language: "python" is "Python", "ir" is "R"; None for a
    name go-enry does not know (a notebook's metadata is the crawl's: any string at all)."""
    found = KERNEL_NAMES.get(name.lower()) or name[:1].upper() + name[1:]
    if len(found) > 64 or not found.isprintable() or found.encode("utf-8", "replace").decode() != found:
        return None
    if enry.get_language_type(found) in ("", "unknown"):
        return None
    return found


def script(cells: list[Cell], language: str | None) -> str:
    """Markdown cells as line comments of the language, code cells as they are; a blank
    line between cells."""
    prefix = COMMENT_OF.get(language or "", "#")
    parts = []
    for cell in cells:
        if cell.kind == "code":
            parts.append(cell.text.rstrip("\n"))
        else:
            lines = cell.text.rstrip("\n").split("\n")
            parts.append("\n".join(f"{prefix} {line}".rstrip() for line in lines))
    return "\n\n".join(part for part in parts if part) + "\n"


def structured(cells: list[Cell]) -> tuple[str, list[int]]:
    """StarCoder's markup, and for each marker-looking string in it the special id it is
    (0: text of the notebook that only looks like one)."""
    pieces: list[tuple[int, str]] = [(START, "")]
    for cell in cells:
        if cell.kind == "code":
            pieces.append((CODE, cell.text))
            pieces.append((OUTPUT, cell.output) if cell.output else (OUTPUT, ""))
            if not cell.output:
                pieces.append((EMPTY, ""))
        else:
            pieces.append((TEXT, cell.text))
    text, markers = [], []
    for special, piece in pieces:
        if special:
            text.append(SPECIAL_TOKENS[special])
            markers.append(special)
        text.append(piece)
        markers.extend(0 for _ in MARKER_TEXT.finditer(piece))
    return "".join(text), markers


def segments(content: str, markers: list[int] | None) -> Iterator[tuple[int, str]]:
    """(special id, "") for each real marker and (0, text) between them, from a structured
    content and its markers; the whole content as one text when they do not line
    up (see the module docstring)."""
    found = list(MARKER_TEXT.finditer(content))
    if not markers or len(found) != len(markers) or any(
            special and SPECIAL_TOKENS[special] != match.group()
            for special, match in zip(markers, found, strict=True)):
        yield 0, content
        return
    start = 0
    for special, match in zip(markers, found, strict=True):
        if special:
            if match.start() > start:
                yield 0, content[start:match.start()]
            yield special, ""
            start = match.end()
    if start < len(content):
        yield 0, content[start:]


def cells_of(content: str, markers: list[int] | None) -> list[Cell] | None:
    """The markdown and code cells back from a structured content and its markers (for the
    "both" form's script); None when the markers do not line up."""
    parts = list(segments(content, markers))
    if not parts or parts[0] != (START, ""):
        return None
    cells: list[Cell] = []
    kind = None  # the kind of the cell whose text comes next; None inside an output
    for special, text in parts[1:]:
        if special in (TEXT, CODE):
            kind = "markdown" if special == TEXT else "code"
            cells.append(Cell(kind, ""))
        elif special == OUTPUT:
            kind = None
        elif special == 0 and kind is not None:
            cells[-1] = Cell(kind, text)
    return cells


class NotebookConverter(FileStage):
    """Turns each kept `.ipynb` file into its script or structured form (module docstring)."""

    name = "notebooks"
    settings_class = NotebookConfig

    config: NotebookConfig

    def process(self, record: FileRecord) -> None:
        if not self.config.enabled or not record.path.lower().endswith(".ipynb") or record.content is None:
            return
        try:
            cells, language = parse_notebook(record.content, self.config.max_output_chars)
        except NotebookError as err:
            record.drop(BAD_NOTEBOOK, str(err))
            return
        record.language = language
        record.language_type = (enry.get_language_type(language) or None) if language else None
        if self.config.form == "script":
            record.content = script(cells, language)
            return
        record.content, markers = structured(cells)
        record.notebook = json.dumps({"form": self.config.form, "markers": markers}, separators=(",", ":"))
