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

Cost is linear in the file's size, whatever its content, with no time budget (the output does
not depend on the machine): the recognizers are RE2 patterns (google-re2, which does not
backtrack), and the patterns left on `re` cannot backtrack far (a literal, then bounded
repetitions or runs that stop at the next occurrence of the literal). Presidio gets the
NLP artifacts of an empty text: no recognizer reads tokens, and spaCy's tokenizer is
quadratic in a run of punctuation (2,000 `=` took over a second), so the findings are what
they were with tokens, without their cost.

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
A generic value must be longer than 8 characters (and at most 200), mix at least two of lower
case, upper case and digits, reach an entropy threshold, and not look like a placeholder
(`changeme`, `<...>`, `${...}`, `xxxx`, `your_...`, `example`, ...); `password = get_password()`
has no literal and is never touched. Documented example keys (AWS's `...EXAMPLE`) are left alone.

The original values are never stored: the record keeps counts per type and the findings'
(type, start, end) offsets for `corpus inspect`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import sys
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import re2

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

# The checks below run with `re` on one value or a few characters before it, never on a whole
# text, and have no nested quantifiers: linear in what they read.
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


def _re2(pattern: str) -> Any:
    """An RE2 pattern, quiet: when a text drives its DFA past its memory, RE2 goes on with its
    NFA (slower, still linear, the same matches) and would log that on every search."""
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


# RE2's own \w, \s and \d are ASCII. These are Python's for str, spelled for RE2: the same
# sets on every character Python 3.11 knows (Unicode 14), so the patterns match what they
# matched under `re`. (One difference is left: `re` folds İ and ı to i under IGNORECASE.)
WORD, SPACE, DIGIT = r"\pL\pN_", r"\t-\r\x1c-\x20\x85\p{Z}", r"\p{Nd}"

# The gate: a few simple patterns, each fast on its own, rather than one alternation that
# tries every branch at every position. A pattern that starts with a literal character lets
# the regex engine jump from one occurrence of it to the next (20-30x faster than starting
# with the look-behind, on real code): so the look-behinds come after the literal. They stay
# on `re`, linear as written: after the literal, bounded repetitions, or runs that stop at
# the next occurrence of the literal (so no character is read more than a few times).
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
# password-like names followed by = or :, in any case. Under `re` this was quadratic in a run
# of names ("tokentoken..."); `pass` must end a word, which the [.-] after it (or the
# separator) says without \b, whose RE2 form is ASCII-only.
GATE_NAMES = _re2(
    rf"(?i)(?:(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|passw|pwd)[{WORD}.-]*"
    rf"|pass(?:[.-][{WORD}.-]*)?)[\"']?[{SPACE}]*[:=]")


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


class Utf8Text:
    """A text as RE2 reads it, UTF-8, and the way back from its byte offsets to the text's."""

    def __init__(self, text: str):
        self.text = text
        # a lone surrogate (JSON's "\ud800") has no UTF-8 form: "?" stands in, one byte for one character
        self.data = text.encode("utf-8", "replace")
        self._ascii = len(self.data) == len(text)
        self._byte = self._char = 0  # the last offset mapped: the next is counted from there

    def offset(self, byte: int) -> int:
        """The text offset of a byte offset; linear over offsets asked in increasing order."""
        if self._ascii:
            return byte
        if byte >= self._byte:
            self._char += len(self.data[self._byte:byte].decode())
        else:
            self._char -= len(self.data[byte:self._byte].decode())
        self._byte = byte
        return self._char


def _gate_hits(content: str) -> list[tuple[int, int]]:
    hits = [hit for gate in GATES for hit in _first_hits(gate, content)]
    text = Utf8Text(content)
    hits += [(text.offset(start), text.offset(end)) for start, end in _first_hits(GATE_NAMES, text.data)]
    return sorted(hits)


def _first_hits(gate: Any, text: str | bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the gate's first match on each line: the window takes the whole line, so
    the next match on it would select nothing (a line of a thousand `password=` is one hit,
    not a thousand). A match may run over lines (a name, then `=` on the next): the search
    resumes after it, as `finditer` did."""
    newline = "\n" if isinstance(text, str) else b"\n"
    position = 0
    while (match := gate.search(text, position)) is not None:
        start, end = match.span()
        yield start, end
        line_end = text.find(newline, start)
        if line_end == -1:
            return
        position = max(end, line_end + 1)


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _classes(value: str) -> int:
    return sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))


class Value(NamedTuple):
    """A recognizer's match: the value's offsets in the text, and the name it is assigned to."""

    start: int
    end: int
    name: str = ""


Check = Callable[[str, Value, str], bool]  # (value, where, text) -> keep the finding


@dataclass(frozen=True)
class Rule:
    """One recognizer: an RE2 pattern whose group `v` is the value, its entity, and a check on
    (value, where, text) that may reject it.

    RE2 has no look-around and no backreference: a look-behind becomes a character read before
    the value, `(?:^|[^...])`, and a look-ahead one read after it, `(?:$|[^...])`. As the
    character after a value may be read by two matches, each search starts where the last
    value ended, not where its match did (`re` resumed there too, its look-ahead being of zero
    width). tests/filters/test_pii.py holds each pattern's `re` form and checks they agree."""

    name: str
    entity: str
    pattern: Any  # re2's compiled pattern (the package exports no name for its type), or None with `scan`
    check: Check | None = None
    password_by_name: bool = False  # PASSWORD instead of `entity` when the assigned name is password-like
    scan: Callable[[str], Iterator[Value]] | None = None  # for a rule beyond one pattern: instead of it

    def entity_of(self, found: Value) -> str:
        return PASSWORD if self.password_by_name and PASSWORD_NAME.search(found.name) else self.entity

    def values(self, text: Utf8Text) -> Iterator[Value]:
        if self.scan is not None:
            yield from self.scan(text.text)
            return
        value = self.pattern.groupindex["v"]  # re2's match objects take group numbers only
        position = 0
        while (match := self.pattern.search(text.data, position)) is not None:
            position = match.end(value)
            yield Value(text.offset(match.start(value)), text.offset(position))


NAME_RUN = _re2(rf"[{WORD}.-]*")  # the characters of a name a secret is assigned to


@dataclass(frozen=True)
class AssignedRule(Rule):
    """A value assigned to a password-like name. `pattern` is the whole match, without groups;
    `head` what may come before the name (`export `), `tail` what follows it, with groups v, q
    and close (the quotes around the value, which must be the same: RE2 has no backreference).
    RE2 reads groups with a slower engine than the DFA that finds a match, over the whole match,
    and a name may be a megabyte of letters (20 times the cost): so the name is the run of name
    characters where the match starts, and only the tail is read for groups."""

    head: Any = None
    tail: Any = None

    def values(self, text: Utf8Text) -> Iterator[Value]:
        data, groups = text.data, self.tail.groupindex
        position = 0
        while (match := self.pattern.search(data, position)) is not None:
            name_start = match.start() if self.head is None else self.head.match(data, match.start()).end()
            name_end = NAME_RUN.match(data, name_start).end()  # a name ends where the separator starts
            tail = self.tail.match(data, name_end)
            start, end = tail.span(groups["v"])
            if "q" in groups and tail.group(groups["q"]) != tail.group(groups["close"]):
                # no match under `re`, which went on to the next start: none before the value
                # can succeed (a name's run ends where this one's did), so resume there
                position = start
                continue
            position = end
            yield Value(text.offset(start), text.offset(end), data[name_start:name_end].decode())


def _email_ok(value: str, found: Value, text: str) -> bool:
    domain = value.rsplit("@", 1)[1]
    return not (DOC_DOMAINS.search(domain) or SERVICE_USERS.match(value)
                or domain.rsplit(".", 1)[1].lower() in FILE_TLDS)


def _ip_ok(value: str, found: Value, text: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if not address.is_global or address.is_multicast or str(address) in KEEP_IPS or value in KEEP_IPS:
        return False
    context_start = max(0, found.start - 40)  # never further back: one long line may hold many addresses
    line_start = text.rfind("\n", context_start, found.start)
    return not VERSION_CONTEXT.search(text[context_start if line_start == -1 else line_start + 1:found.start])


def _ipv6_ok(value: str, found: Value, text: str) -> bool:
    """At least three colons and a group of three or more hex digits: `4::2:4` in an error
    message or `a::b` in C++ parse as addresses but are not."""
    groups = [g for g in value.split(":") if g]
    return (value.count(":") >= 3 and any(len(g) >= 3 for g in groups) and any(c.isdigit() for c in value)
            and _ip_ok(value, found, text))


def _not_example(value: str, found: Value, text: str) -> bool:
    return "EXAMPLE" not in value.upper()


def _private_key_ok(value: str, found: Value, text: str) -> bool:
    return sum(c.isalnum() for c in value) >= 32


PLACEHOLDER_WORDS = frozenset({"pass", "pwd", "pw", "user", "admin", "root", "guest", "foo", "bar", "abc"})


def _url_password_ok(value: str, found: Value, text: str) -> bool:
    return len(value) >= 3 and value.lower() not in PLACEHOLDER_WORDS and not PLACEHOLDER.search(value)


def _generic_check(config: PiiConfig) -> Check:
    def check(value: str, found: Value, text: str) -> bool:
        if len(value) < config.min_secret_length or PLACEHOLDER.search(value) or "://" in value:
            return False
        if _classes(value) < 2:
            return False
        is_password = bool(PASSWORD_NAME.search(found.name))
        return entropy(value) >= (config.min_password_entropy if is_password else config.min_secret_entropy)
    return check


# A private key block, as `-----BEGIN L-----\s*(?P<v>[A-Za-z0-9+/=\s:,.-]+?)\s*-----END L-----`
# with the same label L (`[A-Z0-9 ]*PRIVATE KEY( BLOCK)?`) at both ends matched it under `re`,
# in quadratic time when BEGINs had no END. RE2 has no backreference to say "the same label":
# the markers are found apart (a label is the whole run of [A-Z0-9 ] after BEGIN or END, as
# "-----" follows it) and paired here, each BEGIN with the first END of its label in the run
# of body characters after it; what the lazy body and the \s* around it took follows from the
# runs. These patterns stay on `re`: each reads one run of one class after a literal or at a
# given position (linear), at a fifth of RE2's cost per match through its Python binding.
PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]*)")  # without the closing dashes: they may open the next
PEM_KEY_LABELS = ("PRIVATE KEY", "PRIVATE KEY BLOCK")
KEY_BODY = re.compile(r"[A-Za-z0-9+/=\s:,.-]*")
SPACES = re.compile(r"\s*")


def _private_keys(text: str) -> Iterator[Value]:
    if "-----END " not in text:
        return
    begins, ends = [], defaultdict(list)
    for marker in PEM_MARKER.finditer(text):
        kind, label = marker.groups()
        if label.endswith(PEM_KEY_LABELS) and text.startswith("-----", marker.end()):
            if kind == "BEGIN":
                begins.append((marker.start(), marker.end() + 5, label))
            else:
                ends[label].append(marker.start())
    taken = run_end = 0
    for start, header_end, label in begins:
        closings = ends.get(label)
        if start < taken or not closings:  # inside the last block found, or no END of this label
            continue
        if header_end >= run_end:  # the run of body characters this header ends in (its dashes are some)
            run_end = KEY_BODY.match(text, header_end).end()
        body = SPACES.match(text, header_end).end()
        at = bisect_left(closings, body + 1)  # the body is one character at least
        if at < len(closings) and closings[at] <= run_end:
            closing = closings[at]
            value = Value(body, body + len(text[body:closing].rstrip()))
        elif body > header_end and (at := bisect_left(closings, body)) < len(closings) and closings[at] == body:
            closing = body  # only white space before END: the body is its last character, as `re` backtracked
            value = Value(body - 1, body)
        else:
            continue
        taken = closing + len("-----END ") + len(label) + 5
        yield value


def rules(config: PiiConfig) -> list[Rule]:
    found: list[Rule] = []
    if config.emails:
        found.append(Rule("email", EMAIL, _re2(
            rf"(?:^|[^{WORD}.+%:/-])(?P<v>[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}}@"
            rf"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,24}})(?:$|[^{WORD}-])"), _email_ok))
    if config.ip_addresses:
        octet = rf"(?:25[0-5]|2[0-4]{DIGIT}|1{DIGIT}{DIGIT}|[1-9]?{DIGIT})"
        found.append(Rule("ipv4", IP_ADDRESS, _re2(  # not followed by a word character, .digit, .* or -word
            rf"(?:^|[^{WORD}.])(?P<v>{octet}\.{octet}\.{octet}\.{octet})"
            rf"(?:$|[^{WORD}.-]|\.(?:$|[^{DIGIT}*])|-(?:$|[^{WORD}]))"), _ip_ok))
        found.append(Rule("ipv6", IP_ADDRESS, _re2(
            rf"(?:^|[^{WORD}:.])(?P<v>(?:[0-9A-Fa-f]{{1,4}}:|:){{2,7}}(?:[0-9A-Fa-f]{{1,4}}|:))(?:$|[^{WORD}:.])"),
            _ipv6_ok))
    if config.secrets:
        found += [
            Rule("private_key", KEY, None, _private_key_ok, scan=_private_keys),
            Rule("aws_access_key_id", KEY, _re2(
                r"(?:^|[^A-Z0-9])(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?:$|[^A-Z0-9])"), _not_example),
            # the name's letters ASCII-only: 40 copies of Unicode's would make a program too big for RE2's DFA
            Rule("aws_secret_access_key", KEY, _re2(
                rf"(?i:aws[\w.-]{{0,20}}(?:secret|key)[\w.-]{{0,20}})[\"']?[{SPACE}]*[:=][{SPACE}]*[\"']?"
                r"(?P<v>[A-Za-z0-9/+]{40})(?:$|[^A-Za-z0-9/+])"), _not_example),
            Rule("github_token", KEY, _re2(
                rf"(?:^|[^{WORD}])(?P<v>gh[pousr]_[A-Za-z0-9]{{36,251}}|github_pat_[A-Za-z0-9_]{{82}})"
                rf"(?:$|[^{WORD}])")),
            Rule("gitlab_token", KEY, _re2(
                rf"(?:^|[^{WORD}])(?P<v>glpat-[A-Za-z0-9_-]{{20}})(?:$|[^A-Za-z0-9_-])")),
            Rule("slack_token", KEY, _re2(rf"(?:^|[^{WORD}])(?P<v>xox[abposr]-[A-Za-z0-9-]{{10,}})")),
            Rule("slack_webhook", KEY, _re2(
                r"hooks\.slack\.com/services/(?P<v>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)")),
            Rule("stripe_key", KEY, _re2(
                rf"(?:^|[^{WORD}])(?P<v>[sr]k_(?:live|test)_[A-Za-z0-9]{{16,}})(?:$|[^{WORD}])")),
            Rule("google_api_key", KEY, _re2(
                rf"(?:^|[^{WORD}])(?P<v>AIza[0-9A-Za-z_-]{{35}})(?:$|[^0-9A-Za-z_-])")),
            Rule("jwt", KEY, _re2(
                rf"(?:^|[^{WORD}])(?P<v>eyJ[A-Za-z0-9_-]{{8,}}\.eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}})")),
            Rule("url_password", PASSWORD, _re2(
                rf"(?:^|[^{WORD}])[a-z][a-z0-9+.-]*://[^{SPACE}:/@\"'`]+:(?P<v>[^{SPACE}@/\"'`]+)@"),
                _url_password_ok),
        ]
        name = (rf"(?i:[{WORD}.-]*(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|passwd"
                rf"|password|pwd|pass)[{WORD}.-]*)")
        # NAME = 'value', in any of three quotes, the same at both ends
        quoted = (rf"[\"']?[{SPACE}]*(?::=|=>|[:=])[{SPACE}]*(?P<q>[\"'`])(?P<v>[^\"'`{SPACE}]{{1,200}})"
                  r"(?P<close>[\"'`])")
        # the same, unquoted, as a whole line of a .env, INI, YAML or shell file: NAME=value
        line_start = r"^[ \t]*(?:export[ \t]+)?"
        bare = rf"[ \t]*[:=][ \t]*(?P<v>[^{SPACE}\"'`#;,()\[\]{{}}<>$]{{1,200}})[ \t]*(?:#.*)?$"
        found += [
            AssignedRule("assigned_secret", KEY, _re2(_without_groups(name + quoted)), _generic_check(config),
                         password_by_name=True, tail=_re2(quoted)),
            AssignedRule("assigned_secret_bare", KEY, _re2("(?m)" + _without_groups(line_start + name + bare)),
                         _generic_check(config), password_by_name=True, head=_re2("(?m)" + line_start),
                         tail=_re2("(?m)" + bare)),
        ]
    return found


def _without_groups(pattern: str) -> str:
    """The pattern with its named groups made plain: RE2 then finds a match with its DFA alone."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


def _import_presidio_without_ml() -> None:
    """Import Presidio and spaCy while `transformers` and `torch` cannot be imported: both
    reach for them when installed (the `train` extra), which cost every worker process 9 s
    of a tiny build's 12; without them, 1.5 s. Neither is used here; Presidio's Hugging Face
    engine and thinc's torch support fall back as they do where those are not installed, and
    the names are importable again right after (the trainer imports them in its own right)."""
    blocked = [name for name in ("transformers", "torch") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # an ImportError for whoever imports it meanwhile
    try:
        import presidio_analyzer  # noqa: F401
        import spacy  # noqa: F401
    finally:
        for name in blocked:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def blank_english_engine() -> Any:
    """Presidio's spaCy NLP engine on a blank English pipeline built in memory: a tokenizer
    only, so no model is downloaded (DESIGN.md's pitfall). The stage's analyzer never runs it
    on a file (see CodeAnalyzer); plain Presidio in bench/pii.py does."""
    _import_presidio_without_ml()
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


class CodeAnalyzer:
    """Presidio's AnalyzerEngine with only the code recognizers of `rules(config)`, given the
    NLP artifacts of an empty text (see the module's doc) and no context enhancement (no
    recognizer has context words, and Presidio's enhancer deep-copies every result to find that out)."""

    def __init__(self, config: PiiConfig):
        _import_presidio_without_ml()
        from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
        from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

        class CodeRecognizer(EntityRecognizer):
            def __init__(self, rule: Rule):
                self.rule = rule
                entities = [rule.entity, PASSWORD] if rule.password_by_name else [rule.entity]
                super().__init__(supported_entities=entities, name=rule.name)

            def load(self) -> None:
                pass

            def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list:
                results = []
                for found in self.rule.values(Utf8Text(text)):
                    value = text[found.start:found.end]
                    if self.rule.check is None or self.rule.check(value, found, text):
                        results.append(RecognizerResult(self.rule.entity_of(found), found.start, found.end, 1.0))
                return results

        class NoContext(ContextAwareEnhancer):
            def __init__(self) -> None:
                super().__init__(0, 0, 0, 0)

            def enhance_using_context(self, text: str, raw_results: list, nlp_artifacts: Any, recognizers: list,
                                      context: list[str] | None = None) -> list:
                return raw_results

        engine = blank_english_engine()
        registry = RecognizerRegistry(recognizers=[CodeRecognizer(rule) for rule in rules(config)])
        self.engine = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"],
                                     context_aware_enhancer=NoContext())
        self.no_tokens = engine.process_text("", "en")

    def analyze(self, text: str) -> list:
        return self.engine.analyze(text=text, language="en", nlp_artifacts=self.no_tokens)


def build_analyzer(config: PiiConfig) -> CodeAnalyzer:
    return CodeAnalyzer(config)


def _windows(content: str) -> list[tuple[int, int]]:
    """(start, end) spans of the lines the gate selects, merged; a private key block's span
    runs to the line of the next END marker."""
    spans: list[tuple[int, int]] = []
    closing = None  # where the next "-----END" is: one search serves every BEGIN before it
    for hit_start, hit_end in _gate_hits(content):
        if spans and hit_start < spans[-1][1]:
            continue  # the hit is on a line already selected (looking for its start would cost the line's length)
        start = content.rfind("\n", 0, hit_start) + 1
        end_at = hit_end
        if content.startswith("-----BEGIN", hit_start):
            if closing is None or -1 < closing < hit_end:
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


def find(content: str, analyzer: CodeAnalyzer) -> list[tuple[str, int, int]]:
    """(entity, start, end) of what to redact, non-overlapping, in file offsets."""
    spans = _windows(content)
    if not spans:
        return []
    pieces, at, shifts = [], [], []
    position = 0
    for start, end in spans:
        at.append(position)
        shifts.append(start - position)
        pieces.append(content[start:end])
        position += end - start + 1  # the "\n" joining windows
    text = "\n".join(pieces)
    found = []
    for result in analyzer.analyze(text):
        shift = shifts[bisect_right(at, result.start) - 1]
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


_ANALYZERS: dict[PiiConfig, CodeAnalyzer] = {}  # a worker process runs many units: build the analyzer once


class PiiRedactor(FileStage):
    """A transform, not a filter: never drops, replaces what it finds, counts per type."""

    name = "pii"
    settings_class = PiiConfig

    config: PiiConfig

    def __init__(self, config: PiiConfig):
        super().__init__(config)
        self._analyzer: CodeAnalyzer | None = None

    @property
    def analyzer(self) -> CodeAnalyzer:
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
