"""Benchmark: the PII stage against plain Presidio, for speed on real code and for recall and
false positives on a labeled set of code with secrets.

    .venv/bin/python bench/pii.py [--config configs/default.toml] [--repeat 3] [--plain-mb 1.0] [--hostile-mb 1.0]

Real code: the programming-language files of the default sample (public PyPI and npm
packages, fetched into the cache if needed).

Speed (one core, median of --repeat): MB/s of `PiiRedactor.process` on every file, and on
the first --plain-mb MB of them next to plain Presidio on the same files in the same run:
`AnalyzerEngine` with Presidio's predefined recognizers (the same blank spaCy pipeline,
since no model can be downloaded) and every finding redacted. Also: plain Presidio's
findings per MB of this clean code.

The labeled set (assembled here, seeded, nothing real in it):
  secrets      SECRETS_PER_KIND values of each kind below, random but of the real format
               (AWS key ids and secrets, GitHub/GitLab/Slack/Stripe/Google keys, JWTs,
               private key blocks, passwords and tokens assigned in Python/JS/YAML/.env
               syntax, passwords in connection URLs, e-mail addresses, public IPs), plus
               four shapes no recognizer targets (an XML <password> element, a Java
               setter, a curl header, HTTP basic auth), each inserted as one line at a
               random line of a random real file;
  look-alikes  handwritten lines that look like secrets and are not (calls, placeholders,
               environment lookups, hashes from lock files, UUIDs, versions, private and
               DNS addresses, documentation e-mails, base64 images, git SHAs), inserted
               the same way, plus up to 300 lines of the real files with a password-like
               name followed by = or : (`token = ...`, `password: ...`), which public
               packages hold as code, not as secrets (e-mail addresses and IPs in them are
               real PII, not look-alikes, and are not among these lines).
recall: the share of secret values no longer in the output; touched: the share of
look-alike lines changed. Plain Presidio is scored on the same files.

Hostile input (issue 20): MB/s per core of the stage on files of --hostile-mb MB built from
the worst case of each detector (the shapes of tests/filters/test_regex_cost.py: a run of
password-like names, long runs of `=`, quotes and base64 after a name, `-----BEGIN` without
an END, ...), median of --repeat, next to the real code above in the same run: the worst
must stay within 10x of real code. Files dense in findings (an IP address every 14
characters, an e-mail address every 23) are reported apart: their cost is linear too, but it
is the per-finding work (checks, Presidio's results, the redaction), not the regex engine.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import string
import time
from pathlib import Path

from report import publish  # bench/report.py

from corpus_core.records import FileRecord
from filters.pii import GATE_NAMES, PiiConfig, PiiRedactor, blank_english_engine
from pipeline.config import load_config
from pipeline.flow import stages_of
from stages.ingest import Ingest
from stages.sources import resolve_units

ROOT = Path(__file__).resolve().parents[1]
SECRETS_PER_KIND = 20
ALNUM = string.ascii_letters + string.digits


def sample_code(config_path: Path) -> list[str]:
    config = load_config(config_path)
    found, seen = [], set()
    for unit in resolve_units(config.sources):
        records = Ingest(config.ingest, config.cache_dir).run(unit)
        for spec in (s for s in stages_of("file") if s.name == "language"):
            records = spec.build(config).run(records)
        for record in records:
            if record.kept and record.language_type == "programming" and record.sha256 not in seen:
                seen.add(record.sha256)
                found.append(record.content)
    return sorted(found)


def secrets(rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, line, value): the value appears once in the line."""
    def r(n: int, alphabet: str = ALNUM) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    def b64(n: int) -> str:
        return base64.b64encode(bytes(rng.randrange(256) for _ in range(n))).decode()

    makers = {
        "aws_access_key_id": lambda: (v := "AKIA" + r(16, string.ascii_uppercase + string.digits),
                                      f'aws_access_key_id = "{v}"'),
        "aws_secret": lambda: (v := r(40, ALNUM + "/+"), f"AWS_SECRET_ACCESS_KEY={v}"),
        "github": lambda: (v := "ghp_" + r(36), f'    headers = {{"Authorization": "token {v}"}}'),
        "gitlab": lambda: (v := "glpat-" + r(20, ALNUM + "_-"), f"GITLAB_TOKEN = '{v}'"),
        "slack": lambda: (v := "xoxb-" + r(10, string.digits) + "-" + r(24), f'client = WebClient(token="{v}")'),
        "stripe": lambda: (v := "sk_live_" + r(24), f'stripe.api_key = "{v}"'),
        "google": lambda: (v := "AIza" + r(35, ALNUM + "_-"), f'const MAPS_KEY = "{v}";'),
        "jwt": lambda: (v := "eyJ" + r(30, ALNUM + "_-") + ".eyJ" + r(40, ALNUM + "_-") + "." + r(43, ALNUM + "_-"),
                        f"Authorization: Bearer {v}"),
        "private_key": lambda: (v := "\n".join(b64(48) for _ in range(6)),
                                f"-----BEGIN RSA PRIVATE KEY-----\n{v}\n-----END RSA PRIVATE KEY-----"),
        "password_py": lambda: (v := r(6) + rng.choice("!#%&*") + r(6), f'    DB_PASSWORD = "{v}"'),
        "password_js": lambda: (v := r(14), f"  password: '{v}',"),
        "password_env": lambda: (v := r(16), f"POSTGRES_PASSWORD={v}"),
        "token_yaml": lambda: (v := r(32), f"  api_token: {v}"),
        "secret_py": lambda: (v := r(32, string.hexdigits.lower()[:16]), f'SECRET_KEY = "{v}"'),
        "url_password": lambda: (v := r(12), f'DATABASE_URL = "postgres://app:{v}@db.prod.acme-corp.io:5432/app"'),
        "email": lambda: (v := f"{r(6, string.ascii_lowercase)}.{r(5, string.ascii_lowercase)}@"
                              f"{r(7, string.ascii_lowercase)}.com", f"# Maintainer: Sam Doe <{v}>"),
        "ipv4": lambda: (v := f"{rng.choice([23, 45, 52, 93, 104, 151, 185])}.{rng.randrange(256)}."
                              f"{rng.randrange(256)}.{rng.randrange(1, 255)}", f'SERVER = "{v}"'),
        # shapes no recognizer targets: what the recall of secrets in the wild misses
        "xml_password": lambda: (v := r(14), f"  <password>{v}</password>"),
        "java_setter": lambda: (v := r(14), f'    ds.setPassword("{v}");'),
        "curl_header": lambda: (v := r(32), f'curl -H "X-Api-Key: {v}" https://api.acme-corp.io/v1/items'),
        "basic_auth": lambda: (v := base64.b64encode(f"svc:{r(12)}".encode()).decode(),
                               f'HEADERS = {{"Authorization": "Basic {v}"}}'),
    }
    found = []
    for kind, make in makers.items():
        for _ in range(SECRETS_PER_KIND):
            value, line = make()
            found.append((kind, line, value))
    return found


LOOK_ALIKES = [
    "password = get_password()", 'password = "changeme"', 'PASSWORD = "<your password here>"',
    'api_key = os.environ["API_KEY"]', 'token = "${GITHUB_TOKEN}"', 'secret = "xxxxxxxxxxxxxxxx"',
    'SECRET_KEY = os.environ.get("SECRET_KEY", "")', "token = tokens[0]", "api_key = self.api_key",
    'password_field = "password_confirmation"', 'token_type = "bearer"', "if password is None:",
    'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"', 'version = "1.2.3.4"', "__version__ = '2.10.0.1'",
    'LOCAL = "192.168.1.10"', 'DNS = "8.8.8.8"', 'contact = "user@example.com"', "icon = 'logo@2x.png'",
    'id = "123e4567-e89b-12d3-a456-426614174000"',
    '"integrity": "sha512-Vx7bYqZ3kLm9PzT2wR8nQ4hJ6cF1dS5aG0eU3iO7pK2lM9xN8vB4cZ1yT6rE5wQ=="',
    'commit = "3f786850e387550fdab836ed7e6dc881de23001b"',
    'img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"',
    "url = 'postgres://user:password@localhost/db'", "DB_PASSWORD=${DB_PASSWORD}", "    password = pw",
    "git clone git@github.com:acme/tools.git", "@app.route('/login', methods=['POST'])",
    "std::map<std::string, int> m;", 'time = "12:34:56"', "-----BEGIN PRIVATE KEY-----",
    'hash = "5d41402abc4b2a76b9719d911017c592"', "passwd = getpass.getpass()", "key = keys[i]",
    "secret_name: my-app-secret", 'token: "{{ .Values.token }}"', "password: ''",
]


def line_at(text: str, position: int) -> str:
    end = text.find("\n", position)
    return text[text.rfind("\n", 0, position) + 1:len(text) if end == -1 else end]


def insert(files: list[str], line: str, rng: random.Random) -> str:
    lines = rng.choice(files).split("\n")
    at = rng.randrange(len(lines) + 1)
    return "\n".join(lines[:at] + [line] + lines[at:])


def plain_presidio():
    """Presidio's predefined recognizers on the blank English pipeline (offline)."""
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    # the e-mail recognizer validates domains with tldextract, which fetches the public suffix
    # list: use its bundled snapshot instead (offline)
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())
    engine = blank_english_engine()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=engine)
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])

    def redact(text: str) -> tuple[str, int]:
        results = sorted(analyzer.analyze(text=text, language="en"), key=lambda r: (r.start, -r.end))
        out, position, count = [], 0, 0
        for result in results:
            if result.start >= position:
                out += [text[position:result.start], f"<{result.entity_type}>"]
                position, count = result.end, count + 1
        return "".join(out + [text[position:]]), count
    return redact


def ours():
    stage = PiiRedactor(PiiConfig())

    def redact(text: str) -> tuple[str, int]:
        record = FileRecord("bench/pii", "f", len(text), content=text)
        stage.process(record)
        return record.content, record.pii_redactions
    return redact


BASE64 = "QUJDRGVmZ2g0NTY3aWprbE1OT1BxcnN0dXZ3eHl6MDEyMzQ1Njc4OSsv"
HOSTILE = {  # the worst case of each detector, as a function of the file's size in characters
    "password= repeated on one line": lambda size: repeated("password=", size),
    "a run of names, then a value": lambda size: repeated("password", size) + "='Tr0ub4dor&3xQ'",
    "names glued together": lambda size: repeated("token", size),
    "a run of = after a name": lambda size: "password = " + repeated("=", size),
    "a run of quotes after a name": lambda size: "password = " + repeated('"', size),
    "base64 after a name": lambda size: "password=" + repeated(BASE64, size),
    "BEGIN without END, then a key body": lambda size: "-----BEGIN RSA PRIVATE KEY-----\n"
    + repeated(BASE64 + "\n", size),
    "many BEGIN": lambda size: repeated("-----BEGIN RSA PRIVATE KEY-----\n", size),
    "many BEGIN, one END of another label": lambda size: repeated("-----BEGIN RSA PRIVATE KEY-----\n", size)
    + "-----END EC PRIVATE KEY-----\n",
    "dotted words before ://": lambda size: repeated("a.", size) + "://admin:S3cretPassw0rd@db.acme.io",
    "JWT prefixes glued with -": lambda size: repeated("eyJ-", size),
}
DENSE = {
    "public IPs on one line": lambda size: repeated("93.184.216.34 ", size),
    "one e-mail address a paragraph": lambda size: repeated("jane.roe@corp-mail.io\n\n", size),
}


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def hostile(redact, code_mb_s: float, megabytes: float, repeat: int) -> dict:
    """MB/s per core on each hostile file of `megabytes`, and how far the worst is from real code."""
    size = int(megabytes * 1e6)
    rates = {name: round(megabytes / timed(redact, [make(size)], repeat)[0], 2) for name, make in HOSTILE.items()}
    dense = {name: round(megabytes / timed(redact, [make(size)], repeat)[0], 2) for name, make in DENSE.items()}
    worst = min(rates, key=rates.get)
    return {"megabytes_per_file": megabytes, "real_code_mb_s_per_core": round(code_mb_s, 2),
            "mb_s_per_core": rates, "worst": worst, "real_code_over_worst": round(code_mb_s / rates[worst], 1),
            "dense_in_findings_mb_s_per_core": dense}


def timed(redact, texts: list[str], repeat: int) -> tuple[float, int]:
    runs, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = sum(redact(t)[1] for t in texts)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), found


def score(redact, cases: list[tuple[str, str, str]], look_alikes: list[tuple[str, str]]) -> dict:
    caught = sum(value not in redact(text)[0] for _, text, value in cases)
    by_kind: dict[str, list[int]] = {}
    for kind, text, value in cases:
        by_kind.setdefault(kind, []).append(value not in redact(text)[0])
    touched = sum(line not in redact(text)[0] for text, line in look_alikes)
    return {"recall": round(caught / len(cases), 3), "touched": round(touched / len(look_alikes), 3),
            "recall_by_kind": {k: round(sum(v) / len(v), 2) for k, v in sorted(by_kind.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plain-mb", type=float, default=1.0)
    parser.add_argument("--hostile-mb", type=float, default=1.0)
    args = parser.parse_args()

    code = sample_code(args.config)
    megabytes = sum(len(t.encode()) for t in code) / 1e6
    subset, size = [], 0
    for text in code:
        if size >= args.plain_mb * 1e6:
            break
        subset.append(text)
        size += len(text.encode())
    mine, plain = ours(), plain_presidio()
    full_seconds, full_found = timed(mine, code, args.repeat)
    worst_case = hostile(mine, megabytes / full_seconds, args.hostile_mb, args.repeat)
    ours_seconds, _ = timed(mine, subset, args.repeat)
    plain_seconds, plain_found = timed(plain, subset, 1 if args.repeat == 1 else 2)

    rng = random.Random(7)
    cases = [(kind, insert(code, line, rng), value) for kind, line, value in secrets(rng)]
    harvested = sorted({line_at(text, m.start()) for text in code for m in GATE_NAMES.finditer(text)})
    harvested = [line for line in harvested if 0 < len(line) < 300]
    look_alikes = [(insert(code, line, rng), line) for line in LOOK_ALIKES]
    look_alikes += [(insert(code, line, rng), line) for line in rng.sample(harvested, min(300, len(harvested)))]

    publish("pii", {
        "real_code": {"files": len(code), "megabytes": round(megabytes, 2),
                      "ours_mb_s_per_core": round(megabytes / full_seconds, 2), "ours_redactions": full_found},
        "same_files_as_plain": {"megabytes": round(size / 1e6, 2),
                                "ours_mb_s_per_core": round(size / 1e6 / ours_seconds, 2),
                                "plain_presidio_mb_s_per_core": round(size / 1e6 / plain_seconds, 3),
                                "ratio": round(plain_seconds / ours_seconds, 1),
                                "plain_presidio_findings_per_mb": round(plain_found / (size / 1e6))},
        "hostile": worst_case,
        "labeled_set": {"secrets": len(cases), "look_alike_lines": len(look_alikes),
                        "of_which_harvested_from_the_sample": len(look_alikes) - len(LOOK_ALIKES),
                        "ours": score(mine, cases, look_alikes), "plain_presidio": score(plain, cases, look_alikes)},
        "repeat": args.repeat,
    })


if __name__ == "__main__":
    main()
