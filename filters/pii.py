"""PII redaction for code: Presidio as the engine, recognizers built for code, a cheap gate.

Presidio (`presidio-analyzer`) runs offline: its NLP engine is a blank spaCy English
pipeline built in memory (no model download), and only the recognizers below are
registered (none of Presidio's predefined ones: they fire thousands of times on clean
code, and its e-mail and URL recognizers reach for the public suffix list online).

Speed comes from the gate: a few compiled patterns over the whole file find the lines
that could hold anything (an `x@y.z`, four dotted numbers, `-----BEGIN`, a known
token prefix, a password-like name followed by `=` or `:`, a `://user:pass@`). Only those
lines (a private key block: through its END line) go to Presidio, joined into one text per
file, and the findings are mapped back to the file's offsets.

What is redacted, and with what (as StarCoder did; the same value gets the same replacement):
  EMAIL       <EMAIL>     addresses, except documentation domains (example.com/.org/.net,
                          *.example, *.test, *.invalid, localhost), git@github.com-style
                          service users and "name@2x.png"-style file names
  IP_ADDRESS  one of IPV4_REPLACEMENTS / IPV6_REPLACEMENTS (private addresses, chosen by a
                          hash of the value): public addresses only. Private, loopback,
                          link-local, documentation and reserved addresses are left alone, so
                          are well-known public DNS servers (8.8.8.8, 1.1.1.1, ...) and
                          dotted numbers in a version context (`version = "1.2.3.4"`)
  KEY         <KEY>       private key blocks (the body between BEGIN and END), AWS access key
                          ids and secrets, GitHub, GitLab, Slack, Stripe and Google API keys,
                          JWTs, and random-looking values assigned to key/token/secret names
  PASSWORD    <PASSWORD>  values assigned to password-like names (quoted anywhere, or bare as a
                          whole `NAME=value` line of .env, INI, YAML, shell) and the password
                          of a `scheme://user:password@host` URL
A generic value must be longer than 8 characters, mix at least two of lower case, upper
case and digits, reach an entropy threshold, and not look like a placeholder (`changeme`,
`<...>`, `${...}`, `xxxx`, `your_...`, `example`, ...); `password = get_password()` has no
literal and is never touched. Documented example keys (AWS's `...EXAMPLE`) are left alone.

The original values are never stored: the record keeps counts per type and the findings'
(type, start, end) offsets for `corpus inspect`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corpus_core.records import FileRecord
from corpus_core.settings import Settings, setting
from corpus_core.stage import FileStage

EMAIL, IP_ADDRESS, KEY, PASSWORD = "EMAIL", "IP_ADDRESS", "KEY", "PASSWORD"
PLACEHOLDERS = {EMAIL: "<EMAIL>", KEY: "<KEY>", PASSWORD: "<PASSWORD>"}
# private addresses, so a redacted file still reads naturally (StarCoder used a similar fixed set)
IPV4_REPLACEMENTS = ("172.16.31.10", "172.16.58.3", "172.16.17.32", "192.168.127.12", "192.168.3.11")
IPV6_REPLACEMENTS = ("fd00:c2b6:b24b:be67:2827:688d:e6a1:6a3b", "fd00:a516:7c1b:17cd:6d81:2137:bd2a:2c5b",
                     "fd00:9d1f:3fba:92d9:37c1:21f0:0d46:1f0c")
KEEP_IPS = frozenset({"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
                      "208.67.222.222", "208.67.220.220", "2001:4860:4860::8888", "2001:4860:4860::8844",
                      "2606:4700:4700::1111", "2606:4700:4700::1001"})
DOC_DOMAINS = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost|local)$", re.I)
FILE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "ts", "css", "html", "json", "md",
                       "txt", "py", "rb", "go", "rs", "java", "c", "h", "cpp", "so", "zip", "gz", "map", "min"})
SERVICE_USERS = re.compile(r"^git@(?:github\.com|gitlab\.com|bitbucket\.org|ssh\.dev\.azure\.com)$", re.I)
PLACEHOLDER = re.compile(
    r"^(?:x+|\*+|\.+|0+|-+)$|[<>{}\[\]]|\$\{|\$\(|^\$|%[sdr(]"
    r"|changeme|change_me|example|dummy|sample|placeholder|redacted|secret|password|passwd|token|undefined|fixme"
    r"|(?<![a-z])(?:your|my|test|fake|todo|none|null|here|xxx|insert|replace)(?![a-z])",
    re.IGNORECASE,
)
VERSION_CONTEXT = re.compile(
    r"(?i)(?:(?<![a-z])(?:version|release)\w*\W{0,4}|\b(?:ver|tag|rev|v)\W{0,4}|(?:==|!=|>=|<=|~=|[<>~^])\W{0,2})$")
PASSWORD_NAME = re.compile(r"(?i)pass|pwd")

# The gate: a few simple patterns, each fast on its own, rather than one alternation that
# tries every branch at every position. A pattern that starts with a literal character lets
# the regex engine jump from one occurrence of it to the next (20-30x faster than starting
# with the look-behind, on real code): so the look-behinds come after the literal.
GATES = (
    re.compile(r"@(?<=\w@)[\w-]+\.[A-Za-z]"),  # e-mail
    re.compile(r"\.(?<=\d\.)\d{1,3}\.\d{1,3}\.\d"),  # IPv4
    re.compile(r":(?<=[0-9A-Fa-f]:)[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"),  # IPv6
    # known shapes, one pattern each: as one alternation they ran at 31 MB/s, apart at 120
    *(re.compile(shape) for shape in (r"-----BEGIN", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{8}", r"gh[pousr]_",
                                      r"github_pat_", r"glpat-", r"xox[abposr]-", r"hooks\.slack\.com",
                                      r"k_(?:live|test)_(?<=[sr]k_live_|[sr]k_test_)", r"AIza", r"eyJ")),
    re.compile(r"://[^\s/@:]+:[^\s/@]+@"),  # a password in a URL
)
# password-like names followed by = or :, matched on the lowercased text
GATE_NAMES = re.compile(r"(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|passw|pwd|pass\b)"
                        r"[\w.-]*[\"']?\s*[:=]")
GATE_NAMES_ANY_CASE = re.compile(GATE_NAMES.pattern, re.IGNORECASE)


@dataclass(frozen=True)
class PiiConfig(Settings):
    """PII redaction: what is looked for, and how random a secret must look."""

    section = "pii"

    enabled: bool = setting(True, "false: content goes to the shards as read")
    emails: bool = setting(True, "replace e-mail addresses with <EMAIL>")
    ip_addresses: bool = setting(True, "replace public IP addresses with a private one of the same family")
    secrets: bool = setting(True, "keys, tokens, private keys, passwords")
    min_secret_entropy: float = setting(3.0, "bits per character of a value assigned to a key/token/secret name")
    min_password_entropy: float = setting(2.5, "the same for password-like names")
    min_secret_length: int = setting(9, "characters (\"longer than 8\")")


def _gate_hits(content: str) -> list[tuple[int, int]]:
    hits = [(m.start(), m.end()) for gate in GATES for m in gate.finditer(content)]
    lowered = content.lower()
    if len(lowered) == len(content):
        hits += [(m.start(), m.end()) for m in GATE_NAMES.finditer(lowered)]
    else:  # lower() changed the length (a few Unicode letters): offsets would not line up
        hits += [(m.start(), m.end()) for m in GATE_NAMES_ANY_CASE.finditer(content)]
    return sorted(hits)


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _classes(value: str) -> int:
    return sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))


@dataclass(frozen=True)
class Rule:
    """One recognizer: a regex whose group `v` is the value, its entity, and a check on
    (value, match, text) that may reject it."""

    name: str
    entity: str
    pattern: re.Pattern[str]
    check: Callable[[str, re.Match[str], str], bool] | None = None
    password_by_name: bool = False  # PASSWORD instead of `entity` when the assigned name is password-like

    def entity_of(self, match: re.Match[str]) -> str:
        return PASSWORD if self.password_by_name and PASSWORD_NAME.search(match.group("name")) else self.entity


def _email_ok(value: str, match: re.Match[str], text: str) -> bool:
    domain = value.rsplit("@", 1)[1]
    return not (DOC_DOMAINS.search(domain) or SERVICE_USERS.match(value)
                or domain.rsplit(".", 1)[1].lower() in FILE_TLDS)


def _ip_ok(value: str, match: re.Match[str], text: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if not address.is_global or address.is_multicast or str(address) in KEEP_IPS or value in KEEP_IPS:
        return False
    line_start = text.rfind("\n", 0, match.start()) + 1
    return not VERSION_CONTEXT.search(text[max(line_start, match.start() - 40):match.start()])


def _ipv6_ok(value: str, match: re.Match[str], text: str) -> bool:
    """At least three colons and a group of three or more hex digits: `4::2:4` in an error
    message or `a::b` in C++ parse as addresses but are not."""
    groups = [g for g in value.split(":") if g]
    return (value.count(":") >= 3 and any(len(g) >= 3 for g in groups) and any(c.isdigit() for c in value)
            and _ip_ok(value, match, text))


def _not_example(value: str, match: re.Match[str], text: str) -> bool:
    return "EXAMPLE" not in value.upper()


def _private_key_ok(value: str, match: re.Match[str], text: str) -> bool:
    return sum(c.isalnum() for c in value) >= 32


PLACEHOLDER_WORDS = frozenset({"pass", "pwd", "pw", "user", "admin", "root", "guest", "foo", "bar", "abc"})


def _url_password_ok(value: str, match: re.Match[str], text: str) -> bool:
    return len(value) >= 3 and value.lower() not in PLACEHOLDER_WORDS and not PLACEHOLDER.search(value)


def _generic_check(config: PiiConfig) -> Callable[[str, re.Match[str], str], bool]:
    def check(value: str, match: re.Match[str], text: str) -> bool:
        if len(value) < config.min_secret_length or PLACEHOLDER.search(value) or "://" in value:
            return False
        if _classes(value) < 2:
            return False
        is_password = bool(PASSWORD_NAME.search(match.group("name")))
        return entropy(value) >= (config.min_password_entropy if is_password else config.min_secret_entropy)
    return check


def rules(config: PiiConfig) -> list[Rule]:
    found: list[Rule] = []
    if config.emails:
        found.append(Rule("email", EMAIL, re.compile(
            r"(?<![\w.+%:/-])(?P<v>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
            r"[A-Za-z]{2,24})(?![\w-])"), _email_ok))
    if config.ip_addresses:
        octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        found.append(Rule("ipv4", IP_ADDRESS, re.compile(
            rf"(?<![\w.])(?P<v>{octet}\.{octet}\.{octet}\.{octet})(?![\w]|\.[\d*]|-\w)"), _ip_ok))
        found.append(Rule("ipv6", IP_ADDRESS, re.compile(
            r"(?<![\w:.])(?P<v>(?:[0-9A-Fa-f]{1,4}:|:){2,7}(?:[0-9A-Fa-f]{1,4}|:))(?![\w:.])"), _ipv6_ok))
    if config.secrets:
        found += [
            Rule("private_key", KEY, re.compile(
                r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----\s*(?P<v>[A-Za-z0-9+/=\s:,.-]+?)\s*"
                r"-----END (?P=label)-----"), _private_key_ok),
            Rule("aws_access_key_id", KEY, re.compile(
                r"(?<![A-Z0-9])(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])"), _not_example),
            Rule("aws_secret_access_key", KEY, re.compile(
                r"(?i:aws[\w.-]{0,20}(?:secret|key)[\w.-]{0,20})[\"']?\s*[:=]\s*[\"']?"
                r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"), _not_example),
            Rule("github_token", KEY, re.compile(
                r"(?P<v>\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{82}))\b")),
            Rule("gitlab_token", KEY, re.compile(r"(?P<v>\bglpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])")),
            Rule("slack_token", KEY, re.compile(r"(?P<v>\bxox[abposr]-[A-Za-z0-9-]{10,})")),
            Rule("slack_webhook", KEY, re.compile(
                r"hooks\.slack\.com/services/(?P<v>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)")),
            Rule("stripe_key", KEY, re.compile(r"(?P<v>\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,})\b")),
            Rule("google_api_key", KEY, re.compile(r"(?P<v>\bAIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])")),
            Rule("jwt", KEY, re.compile(r"(?P<v>\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})")),
            Rule("url_password", PASSWORD, re.compile(
                r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'`]+:(?P<v>[^\s@/\"'`]+)@"), _url_password_ok),
            Rule("assigned_secret", KEY, re.compile(
                r"(?P<name>(?i:[\w.-]*(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|"
                r"passwd|password|pwd|pass)[\w.-]*))[\"']?\s*(?::=|=>|[:=])\s*(?P<q>[\"'`])(?P<v>[^\"'`\s]{1,200})(?P=q)"),
                _generic_check(config), password_by_name=True),
            # the same, unquoted, as a whole line of a .env, INI, YAML or shell file: NAME=value
            Rule("assigned_secret_bare", KEY, re.compile(
                r"(?m)^[ \t]*(?:export[ \t]+)?(?P<name>(?i:[\w.-]*(?:secret|token|api[_-]?key|access[_-]?key|"
                r"private[_-]?key|auth[_-]?key|passwd|password|pwd|pass)[\w.-]*))[ \t]*[:=][ \t]*"
                r"(?P<v>[^\s\"'`#;,()\[\]{}<>$]{1,200})[ \t]*(?:#.*)?$"),
                _generic_check(config), password_by_name=True),
        ]
    return found


def blank_english_engine() -> Any:
    """Presidio's spaCy NLP engine on a blank English pipeline built in memory: a tokenizer
    only, so no model is downloaded (DESIGN.md's pitfall) and no length limit is needed."""
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankEnglish(SpacyNlpEngine):
        def load(self) -> None:
            nlp = spacy.blank("en")
            nlp.max_length = 1 << 31  # no parser or NER memory to guard against
            self.nlp = {"en": nlp}

    engine = BlankEnglish()
    engine.load()
    return engine


def build_analyzer(config: PiiConfig) -> Any:
    """Presidio's AnalyzerEngine with only the code recognizers of `rules(config)`."""
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult

    class CodeRecognizer(EntityRecognizer):
        def __init__(self, rule: Rule):
            self.rule = rule
            entities = [rule.entity, PASSWORD] if rule.password_by_name else [rule.entity]
            super().__init__(supported_entities=entities, name=rule.name)

        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list:
            results = []
            for match in self.rule.pattern.finditer(text):
                value = match.group("v")
                if self.rule.check is None or self.rule.check(value, match, text):
                    results.append(RecognizerResult(self.rule.entity_of(match), match.start("v"), match.end("v"),
                                                    1.0))
            return results

    registry = RecognizerRegistry(recognizers=[CodeRecognizer(rule) for rule in rules(config)])
    return AnalyzerEngine(registry=registry, nlp_engine=blank_english_engine(), supported_languages=["en"])


def _windows(content: str) -> list[tuple[int, int]]:
    """(start, end) spans of the lines the gate selects, merged; a private key block's span
    runs to its END line."""
    spans: list[tuple[int, int]] = []
    for hit_start, hit_end in _gate_hits(content):
        start = content.rfind("\n", 0, hit_start) + 1
        if spans and start < spans[-1][1]:
            continue  # the hit is on a line already selected
        end_at = hit_end
        if content.startswith("-----BEGIN", hit_start):
            closing = content.find("-----END", hit_end)
            end_at = closing + 8 if closing != -1 else hit_end
        end = content.find("\n", end_at)
        end = len(content) if end == -1 else end
        if spans and start <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def _replacement(entity: str, value: str) -> str:
    if entity != IP_ADDRESS:
        return PLACEHOLDERS[entity]
    choices = IPV6_REPLACEMENTS if ":" in value else IPV4_REPLACEMENTS
    return choices[int(hashlib.md5(value.encode()).hexdigest(), 16) % len(choices)]


def find(content: str, analyzer: Any) -> list[tuple[str, int, int]]:
    """(entity, start, end) of what to redact, non-overlapping, in file offsets."""
    spans = _windows(content)
    if not spans:
        return []
    pieces, offsets = [], []
    position = 0
    for start, end in spans:
        offsets.append((position, start))
        pieces.append(content[start:end])
        position += end - start + 1  # the "\n" joining windows
    text = "\n".join(pieces)
    found = []
    for result in analyzer.analyze(text=text, language="en"):
        window = max(i for i, (at, _) in enumerate(offsets) if at <= result.start)
        shift = offsets[window][1] - offsets[window][0]
        found.append((result.entity_type, result.start + shift, result.end + shift))
    found.sort(key=lambda f: (f[1], -(f[2] - f[1])))
    kept: list[tuple[str, int, int]] = []
    for finding in found:  # overlapping findings: the earlier, then longer, one wins
        if not kept or finding[1] >= kept[-1][2]:
            kept.append(finding)
    return kept


def redact(content: str, findings: list[tuple[str, int, int]]) -> str:
    parts, position = [], 0
    for entity, start, end in findings:
        parts += [content[position:start], _replacement(entity, content[start:end])]
        position = end
    parts.append(content[position:])
    return "".join(parts)


_ANALYZERS: dict[PiiConfig, Any] = {}  # a worker process runs many units: build the analyzer once


class PiiRedactor(FileStage):
    """A transform, not a filter: never drops, replaces what it finds, counts per type."""

    name = "pii"
    settings_class = PiiConfig

    config: PiiConfig

    def __init__(self, config: PiiConfig):
        super().__init__(config)
        self._analyzer: Any = None

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:  # built on first use, in the worker, once per process and settings
            if self.config not in _ANALYZERS:
                _ANALYZERS[self.config] = build_analyzer(self.config)
            self._analyzer = _ANALYZERS[self.config]
        return self._analyzer

    def process(self, record: FileRecord) -> None:
        if not self.config.enabled:
            return
        findings = find(record.content or "", self.analyzer)
        counts = Counter(entity for entity, _, _ in findings)
        record.pii_findings = [{"type": e, "start": s, "end": t} for e, s, t in findings]
        record.pii_redactions = len(findings)
        record.pii_email, record.pii_ip_address = counts[EMAIL], counts[IP_ADDRESS]
        record.pii_key, record.pii_password = counts[KEY], counts[PASSWORD]
        if findings:
            record.content = redact(record.content or "", findings)
            for entity, count in counts.items():
                self.stats.notes[entity] = self.stats.notes.get(entity, 0) + count
