"""Linear time on the worst case of every pattern that reads a whole file: the PII stage (its
gate, its recognizers, the pairing of private key markers) and the quality filter's
encoded-data and generator-marker patterns. Under `re` some of these were quadratic or cubic
in a line's length (a 41 KB line took 72 s), and so was spaCy's tokenizer on a run of
punctuation, which the PII stage no longer runs.

No wall time is asserted: each input is timed at n and 8n characters in this process (CPU
time, the least of three runs) and the ratio must stay under 20, where a linear cost gives
8 and a quadratic one 64."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from corpus_core.records import FileRecord
from filters.pii import PiiConfig, PiiRedactor
from filters.quality import QualityFilter
from tests.conftest import LENIENT

GROWTH, MAX_RATIO, RUNS = 8, 20, 3
BASE64 = "QUJDRGVmZ2g0NTY3aWprbE1OT1BxcnN0dXZ3eHl6MDEyMzQ1Njc4OSsv"


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# name: (n, the input of about `size` characters)
PII_CASES: dict[str, tuple[int, Callable[[int], str]]] = {
    "password= repeated on one line": (512_000, lambda size: repeated("password=", size)),
    "a run of names, then a value": (128_000, lambda size: repeated("password", size) + "='Tr0ub4dor&3xQ'"),
    "names glued together": (512_000, lambda size: repeated("token", size)),
    "a run of = after a name": (256_000, lambda size: "password = " + repeated("=", size)),
    "a run of quotes after a name": (128_000, lambda size: "password = " + repeated('"', size)),
    "base64 after a name": (128_000, lambda size: "password=" + repeated(BASE64, size)),
    "BEGIN without END, then a key body": (512_000, lambda size: "-----BEGIN RSA PRIVATE KEY-----\n"
                                           + repeated(BASE64 + "\n", size)),
    "many BEGIN": (64_000, lambda size: repeated("-----BEGIN RSA PRIVATE KEY-----\n", size)),
    "many BEGIN, one END of another label": (64_000, lambda size: repeated("-----BEGIN RSA PRIVATE KEY-----\n", size)
                                             + "-----END EC PRIVATE KEY-----\n"),
    "dotted words before ://": (128_000, lambda size: repeated("a.", size) + "://admin:S3cretPassw0rd@db.acme.io"),
    "JWT prefixes glued with -": (128_000, lambda size: repeated("eyJ-", size)),
    # the detectors of escaped, paired, HTML-escaped, inline and called values, headers, command
    # lines, seeds, hashes, XML and HTML forms, PuTTY and escaped key bodies (issue 16)
    "backslashes after a name": (128_000, lambda size: "password=" + repeated("\\", size)),
    "escaped quotes after names": (128_000, lambda size: repeated('token\\"', size)),
    "quoted names and commas": (128_000, lambda size: repeated('"password", ', size)),
    "HTML-escaped quotes after a name": (128_000, lambda size: "password" + repeated("&quot;", size)),
    "an env name, then no end": (128_000, lambda size: "x DB_PASSWORD=" + repeated("a=", size)),
    "calls of setters, no literal": (128_000, lambda size: repeated("setToken(", size)),
    "Basic then base64 with no end": (128_000, lambda size: "Authorization: Basic " + repeated(BASE64, size)),
    "Bearer repeated": (128_000, lambda size: repeated("Bearer ", size)),
    "a token after a name and a space": (128_000, lambda size: "token " + repeated("A", size)),
    "flags without values": (128_000, lambda size: repeated("--password -", size)),
    "mysql, no -p value": (128_000, lambda size: "mysql " + repeated(" -p-", size)),
    "curl, no -u": (128_000, lambda size: "curl " + repeated("-H x ", size)),
    "NKEY seed prefixes glued": (128_000, lambda size: repeated("SUA", size)),
    "hash prefixes repeated": (128_000, lambda size: repeated("$2b$12$", size)),
    "XML elements never closed": (128_000, lambda size: repeated("<password>", size)),
    "password inputs without a value": (128_000, lambda size: repeated('<input type="password" ', size)),
    "PuTTY markers": (64_000, lambda size: repeated("Private-Lines: 64\n", size)),
    "env names without a value": (64_000, lambda size: repeated("- name: DB_PASSWORD\n", size)),
    "escaped newlines after BEGIN": (128_000, lambda size: "-----BEGIN RSA PRIVATE KEY-----" + repeated("\\n", size)
                                     + "-----END RSA PRIVATE KEY-----"),
    "JWT without its third part": (128_000, lambda size: "eyJ" + repeated("a", size // 2) + "." + repeated("b", size)),
    "public IPs on one line": (8_000, lambda size: repeated("93.184.216.34 ", size)),
    "one e-mail address a paragraph": (8_000, lambda size: repeated("jane.roe@corp-mail.io\n\n", size)),
}

QUALITY_CASES: dict[str, tuple[dict, int, Callable[[int], str]]] = {
    "base64 runs one short of 64": ({"max_encoded_run": 1024}, 256_000, lambda size: repeated("A" * 63 + " ", size)),
    "one base64 line": ({"max_encoded_run": 1024}, 256_000, lambda size: repeated(BASE64, size)),
    "hex byte list": ({"max_encoded_run": 1024}, 128_000, lambda size: repeated("0x1f, ", size)),
    "\\x escapes, seven at a time": ({"max_encoded_run": 1024}, 128_000,
                                     lambda size: repeated("\\x41" * 7 + " ", size)),
    "a generator marker almost, on a long first line": (
        {"generated_markers": True, "marker_lines": 5}, 256_000,
        lambda size: repeated("automatically generate ", size)),
}


def cpu_seconds(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def growth(run: Callable[[str], object], make: Callable[[int], str], n: int) -> float:
    small, large = make(n), make(GROWTH * n)
    run(small)  # warm: the analyzer, RE2's DFA states
    return cpu_seconds(lambda: run(large)) / max(cpu_seconds(lambda: run(small)), 1e-4)


@pytest.fixture(scope="module")
def pii():
    stage = PiiRedactor(PiiConfig())
    stage.process(FileRecord("o/r", "warm.py", 6, content="x = 1\n"))  # builds the analyzer
    return stage


@pytest.mark.parametrize("name", PII_CASES)
def test_the_pii_stage_is_linear_on_its_worst_cases(pii, name):
    n, make = PII_CASES[name]

    def run(text: str) -> None:
        pii.process(FileRecord("o/r", "hostile.py", len(text), content=text))

    assert growth(run, make, n) < MAX_RATIO


@pytest.mark.parametrize("name", QUALITY_CASES)
def test_the_quality_patterns_are_linear_on_their_worst_cases(name):
    settings, n, make = QUALITY_CASES[name]
    stage = QualityFilter(LENIENT["quality"].replace(**settings))

    def run(text: str) -> None:
        stage.process(FileRecord("o/r", "hostile.py", len(text), content=text, language="Python"))

    assert growth(run, make, n) < MAX_RATIO


HTML_CASES: dict[str, Callable[[int], str]] = {
    "unclosed attribute quotes": lambda size: repeated("<a b='", size),  # html.parser: quadratic
    "a < with no >": lambda size: repeated("<", size),
    "comments never closed": lambda size: repeated("<!--", size),
    "script elements never closed": lambda size: repeated("<script>", size),
}


@pytest.mark.parametrize("name", HTML_CASES)
def test_the_html_visible_text_is_linear_on_its_worst_cases(name):
    stage = QualityFilter(LENIENT["quality"].replace(min_html_visible_chars=100, min_html_visible_fraction=0.2))

    def run(text: str) -> None:
        stage.process(FileRecord("o/r", "hostile.html", len(text), content=text, language="HTML"))

    assert growth(run, HTML_CASES[name], 20_000) < MAX_RATIO


LICENSE_METADATA_CASES: dict[str, tuple[str, Callable[[int], str]]] = {
    # a declared value repeated along one line: each occurrence once looked back to the line's start
    "package.json, the value repeated": ("package.json", lambda size: '{"license": "MIT", "x": "'
                                         + repeated("MIT ", size) + '"}\n'),
    # `^\s*` crossed newlines: with no classifier after them, each line start rescanned them all
    "setup.cfg, blank lines": ("setup.cfg", lambda size: "[metadata]\n" + "\n" * size + "name = x\n"),
}


@pytest.mark.parametrize("name", LICENSE_METADATA_CASES)
def test_license_metadata_reading_is_linear_on_its_worst_cases(name):
    from stages.license import _line_of, declared_licenses

    file_name, make = LICENSE_METADATA_CASES[name]

    def run(text: str) -> None:
        for value in declared_licenses(file_name, text) or ["MIT"]:
            _line_of(text, value)

    assert growth(run, make, 8_000) < MAX_RATIO
