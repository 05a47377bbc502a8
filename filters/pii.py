"""PII redaction for code: Presidio as the engine, recognizers built for code, a cheap gate.

Presidio (`presidio-analyzer`) runs offline: its NLP engine is a blank spaCy English
pipeline built in memory (no model download), and only the recognizers below are
registered (none of Presidio's predefined ones: they fire thousands of times on clean
code, and its e-mail and URL recognizers reach for the public suffix list online).

Speed comes from the gate: a few compiled patterns over the whole file find the lines
that could hold anything (an `x@y.z`, four dotted numbers, `-----BEGIN`, a known token
prefix, a secret-like name followed by what assigns it a value, a header scheme, a command
line with a password, a password hash, a `://user:pass@`). Only those lines (a private key
block: through its END line; a PuTTY key: through its private lines) go to Presidio, joined
into one text per file, and the findings are mapped back to the file's offsets.

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
  KEY         <KEY>       private key blocks (the body between BEGIN and END, also in a JSON
                          string with escaped newlines, and PGP's armor) and PuTTY keys' private
                          lines; AWS access key ids and secrets, GitHub, GitLab, Slack, Stripe
                          and Google API keys, JWTs (wherever they stand), NATS NKEY seeds,
                          password and token hashes (bcrypt, argon2, sha-crypt, Django's
                          pbkdf2); random-looking values assigned to key/token/secret names
                          (also OAuth consumer keys and nonces), in any of these shapes: quoted,
                          quoted inside an escaped JSON string (`\"X-Api-Key\": \"...\"`),
                          HTML-escaped, as a `"name", "value"` pair, unquoted on a line of
                          their own or within one (`?api_key=...&`, `# auth token: ...`), as
                          an XML element, a setter's literal (`SetAuthToken("...")`), a
                          command-line flag (`--token ...`), after `Bearer` or `Token`
  PASSWORD    <PASSWORD>  values assigned to password-like names in the shapes above; the
                          password of a `scheme://user:password@host` URL, of `curl -u
                          user:password`, of `Authorization: Basic base64(user:password)`;
                          openssl's `-passin pass:...`, `sshpass -p ...`, `mysql -p...`, an
                          HTML password input's value
A random value must be longer than 8 characters (and at most 200), mix at least two of lower
case, upper case and digits, reach an entropy threshold, and not look like a placeholder
(`changeme`, `<...>`, `${...}`, `xxxx`, `your_...`, `example`, ...) or a UUID. A password may
be a plain word (`"password": "sunshine"`) where the value is a literal: quoted, a YAML value,
after an environment variable's name (`DB_PASSWORD=...`), a flag or in a URL's query, and the
name is a password's (`DB_PASSWORD_PROD`, not `password_hash`, `PASSWORD_FILE` or `bypass`),
and the word is none that code or configuration puts there instead (`str`, `required`,
`Optional`, `self.password`, `DB_PASSWORD`, `/run/secrets/db`, `Passwort`, ...). Unquoted in
code, `password = credentials` is a reference, not a value. `password = get_password()` has
no literal and is never touched. Documented example keys (AWS's `...EXAMPLE`) are left alone.

The original values are never stored: the record keeps counts per type and the findings'
(type, start, end) offsets for `corpus inspect`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
import sys
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
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
    # (Private-Lines: a PuTTY key's; here, not in GATE_NAMES: `re` calls cost a third of RE2's)
    *(re.compile(shape) for shape in (r"-----BEGIN", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{8}", r"gh[pousr]_",
                                      r"github_pat_", r"glpat-", r"xox[abposr]-", r"hooks\.slack\.com",
                                      r"k_(?:live|test)_(?<=[sr]k_live_|[sr]k_test_)", r"AIza", r"eyJ",
                                      r"Private-Lines:")),
    re.compile(r"://[^\s/@:]+:[^\s/@]+@"),  # a password in a URL
)
# Secret-like names followed by what assigns them a value: `=` or `:` (after a closing quote,
# plain, backslash-escaped as in a JSON string inside a string, or HTML-escaped), a `,` after a
# quoted name (`("password", "...")`), a call with a literal (`SetAuthToken("...")`), an XML
# element's text (`<password>...`) or a run of token characters after a space (`auth token
# 4c9184f3...`), in any case. Then the shapes that need no name: header schemes, command lines,
# NKEY seeds, password hashes, HTML password inputs. One RE2 pattern, 320 MB/s on real code: its
# DFA reads each byte once whatever the number of branches, as long as its states fit its memory
# (a branch `<[name]{0,32}password` made it fall back to the NFA at 12 MB/s). Under `re` the names
# were quadratic in a run of names ("tokentoken..."); `pass` must end a word, which the [.-] after
# it (or the separator) says without \b, whose RE2 form is ASCII-only.
SECRET_WORDS = (r"secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|consumer[_-]?key"
                r"|oauth[_-]?nonce")  # not any nonce: HTTP Digest's and CSP's are public
GATE_NAMES = _re2(
    rf"(?i:(?:{SECRET_WORDS}|passw|pwd)[{WORD}.-]*|pass(?:[.-][{WORD}.-]*)?)"
    rf"(?:\\{{0,3}}[\"']?\]?[{SPACE}]*[:=]|(?:&quot;|&#3[49];)[{SPACE}]*[:=]|\\{{0,3}}[\"'][{SPACE}]*,"
    rf"|[{SPACE}]*\([{SPACE}]*\\{{0,3}}[\"'`]|[ \t]+[A-Za-z0-9+/]{{16}}|>[A-Za-z0-9]|`?[ \t]*\||(?:</code>)?</t[dh]>)"
    r"|(?i:basic|bearer)(?:[ \t]+|%20)[A-Za-z0-9+/_.~=-]{8}|\$2[abxy]?\$[0-9]{2}\$|\$argon2|\$[56]\$|pbkdf2_sha"
    r"|(?i:type)=[\"']?(?i:password)|S[ACNOPUX]A[A-Z2-7]{55}"
    r"|-(?i:password|passwd|pass|pwd|passphrase|api[_-]?key|token|secret|client[_-]secret|auth[_-]token"
    rf"|access[_-]token)[ \t]+[\"']?[^-{SPACE}\"'$<{{\[]"
    r"|(?i:sshpass)[ \t]|mysql[^\n]*[ \t]-p[^ \t\n]|curl[^\n]*[ \t](?:-u|--user)[ \t=]"
    rf"|(?i:name)[ \t]*:[ \t]*[\"']?[A-Za-z0-9_.-]*(?i:passw|secret|token|api[_-]?key)[A-Za-z0-9_.-]*[\"']?[ \t]*\r?\n"
    r"[ \t]*(?i:value)[ \t]*:")


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
    # literals, case-folded, one of which is in every match: a window without any is not searched
    # (most windows are there for an e-mail address or a name; () runs the rule on every window)
    needs: tuple[str, ...] = ()

    @cached_property
    def groups(self) -> dict[str, int]:
        """Group numbers by name (re2's match objects take numbers only; its `groupindex` is
        rebuilt on every read)."""
        return dict(self.pattern.groupindex)

    def entity_of(self, found: Value) -> str:
        return PASSWORD if self.password_by_name and PASSWORD_NAME.search(found.name) else self.entity

    def values(self, text: Utf8Text) -> Iterator[Value]:
        if self.scan is not None:
            yield from self.scan(text.text)
            return
        value = self.groups["v"]
        name = self.groups.get("n")  # the name assigned, where the pattern reads one (bounded)
        position = 0
        while (match := self.pattern.search(text.data, position)) is not None:
            position = match.end(value)
            start = text.offset(match.start(value))  # before `position`'s: offsets are mapped in increasing order
            yield Value(start, text.offset(position), "" if name is None else match.group(name).decode())


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

    @cached_property
    def groups(self) -> dict[str, int]:
        return dict(self.tail.groupindex)

    def values(self, text: Utf8Text) -> Iterator[Value]:
        data, groups = text.data, self.groups
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


UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# values documentation publishes as examples: jwt.io's token (its signature), AWS's example secret
DOCUMENTED_EXAMPLES = ("SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def _random_value(value: str, name: str, config: PiiConfig) -> bool:
    """A value that looks random: long enough, two classes of characters, entropy, no placeholder."""
    if len(value) < config.min_secret_length or PLACEHOLDER.search(value) or "://" in value or UUID.match(value):
        return False
    if any(example in value for example in DOCUMENTED_EXAMPLES):
        return False
    if _classes(value) < 2:
        return False
    is_password = bool(PASSWORD_NAME.search(name))
    return entropy(value) >= (config.min_password_entropy if is_password else config.min_secret_entropy)


# A password may be a plain word (`"password": "sunshine"`), where a key or token is random. So
# a plain value counts only where the name is a password's (its last part, or one followed only
# by qualifiers: DB_PASSWORD_PROD, passwordConfirm; not password_hash, PASSWORD_FILE, bypass) and
# the value is not a word that code or configuration puts there instead of a password.
NAME_WORDS = re.compile(r"[a-z]+|[0-9]+")
CAMEL = re.compile(r"([a-z0-9])([A-Z])")
PASSWORD_PARTS = ("password", "passwd", "passphrase", "pwd", "passwort", "passcode")
# a name with one of these words names something about a password, not its value
NAME_NOT_VALUE = frozenset({
    "invalid", "wrong", "bad", "incorrect", "min", "max", "length", "len", "forgot", "reset", "show", "hide",
    "toggle", "validate", "validation", "error", "errors", "msg", "message", "label", "placeholder", "hint", "help",
    "policy", "regex", "pattern", "rule", "rules", "strength", "field", "input", "type", "form", "column", "attr",
    "param", "env", "file", "path", "url", "uri", "hash", "hashed", "hasher", "prompt", "text", "title", "icon"})
NAME_QUALIFIERS = frozenset({
    "confirm", "confirmation", "again", "repeat", "verify", "new", "old", "current", "prod", "production", "dev",
    "staging", "stage", "test", "local", "default", "value", "plain", "clear", "raw", "literal"})
NOT_PASSWORDS = frozenset({
    # types, annotations and form or schema words
    "str", "string", "text", "bool", "boolean", "int", "integer", "number", "float", "object", "bytes", "any",
    "char", "varchar", "secretstr", "optional", "required", "hidden", "input", "field", "masked", "sensitive",
    "invalid", "missing", "weak", "short", "mismatch", "incorrect", "wrong", "match", "error", "unknown",
    # values that say there is none, or where it comes from
    "none", "null", "nil", "undefined", "true", "false", "yes", "no", "on", "off", "empty", "blank", "default",
    "env", "environ", "file", "prompt", "ask", "stdin", "vault", "keyring", "auto", "manual", "always", "never",
    "enabled", "disabled", "secure", "insecure", "plain", "plaintext", "cleartext", "encrypted", "hashed", "hash",
    "md5", "sha1", "sha256", "sha512", "bcrypt", "argon2", "scrypt", "pbkdf2", "crypt", "value",
    # example values
    "pass", "pwd", "pw", "user", "username", "admin", "root", "guest", "demo", "foo", "bar", "baz", "qux", "foobar",
    "abc", "abcd", "abcdef", "abc123", "1234", "12345", "123456", "12345678", "123456789", "testing", "tester",
    # the word itself, in other languages (i18n files)
    "passwort", "kennwort", "contrasena", "contraseña", "senha", "parola", "wachtwoord", "salasana", "lösenord",
    "heslo", "hasło", "jelszó", "пароль", "密码", "密碼", "パスワード", "비밀번호",
    # the classic example passwords of documentation, "secret" and "password" spelled with digits
    "s3cr3t", "s3cret", "secr3t", "passw0rd", "p4ssw0rd", "p4ssword", "p@ssw0rd", "p@ssword", "hunter2", "changeit"})
# Capitalized and CamelCase type names (Text, CharField), ALL_CAPS references and metavars (DB_PASSWORD,
# TEXT), dotted references (self.password, forms.CharField), paths, calls and assignments
NOT_LITERAL = re.compile(
    r"^[A-Z][a-z]+(?:[A-Z][a-z]+)*[0-9]{0,2}$|^[A-Z_]+$|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|^[~.]?/|\w\("
    r"|^[A-Za-z_]\w*=[^=]")  # the next assignment, after an empty value: `make DB_PASSWORD= ENV=prod`
# the parts of a reference in code: words with at most a few digits at their end (user_pass2,
# hashlib.sha256); a random value has digits among its letters
CODE_WORD = re.compile(r"^[A-Za-z]*[0-9]{0,3}$")
IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
SETTER_VERBS = frozenset({"set", "with", "use", "add", "put", "update", "store", "save", "login", "auth",
                          "authenticate", "connect", "new", "init", "configure", "token", "secret", "password"})
SECRET_PARTS = ("password", "passwd", "passphrase", "pwd", "token", "secret", "key", "credential", "credentials")


def _name_words(name: str) -> list[str]:
    return NAME_WORDS.findall(CAMEL.sub(r"\1 \2", name).lower())


def is_password_name(name: str) -> bool:
    """The name is a password's: a password word whose followers are only qualifiers."""
    words = _name_words(name)
    if NAME_NOT_VALUE.intersection(words):
        return False
    last = max((i for i, w in enumerate(words) if w in ("pass", "pw") or w.endswith(PASSWORD_PARTS)), default=None)
    return last is not None and all(w in NAME_QUALIFIERS or w.isdigit() for w in words[last + 1:])


def plain_password(value: str, name: str) -> bool:
    """A plain word is a password here: not a placeholder, a type, a reference or the name again."""
    if not 4 <= len(value) <= 200 or PLACEHOLDER.search(value) or NOT_LITERAL.search(value):
        return False
    lowered = value.lower()
    return lowered not in NOT_PASSWORDS and len(set(lowered)) > 1 and lowered not in name.lower()


def code_reference(value: str) -> bool:
    """`user_pass2`, `hashlib.sha256`, `credentials`: what an unquoted value in code names."""
    return bool(IDENTIFIER.match(value)) and all(CODE_WORD.match(part) for part in re.split(r"[._$]", value))


# `host=db user=app password=...`: a libpq connection string, its pairs apart by spaces
CONNINFO_PAIR = re.compile(r"(?:^|[\s\"'])\w+=[^\s=\"']+[ \t]+$")


def _before_name(found: Value, text: str) -> int:
    """Where the character before an unquoted value's name is (-1: none), back over the separator."""
    position = found.start
    while position > 0 and text[position - 1] in " \t":
        position -= 1
    position -= 1  # the separator
    while position > 0 and text[position - 1] in " \t":
        position -= 1
    return position - len(found.name) - 1


def _literal_context(found: Value, text: str) -> bool:
    """An unquoted value that is a literal, not a reference: after an environment variable's name
    (DB_PASSWORD=), a command-line flag (--password=), in a URL's query (?password=), in HTML text
    or Markdown code (<code>password: ..., `password: ...), or a connection string's pair."""
    name = found.name.lstrip("-")
    if name != found.name or (name[:1].isupper() and name.upper() == name):
        return True
    before = _before_name(found, text)
    if before < 0:
        return False
    return text[before] in "?&>`" or bool(CONNINFO_PAIR.search(text, max(0, before - 80), before + 1))


def _assigned_check(config: PiiConfig, literal: bool | None = True) -> Check:
    """A value assigned to a secret-like name: random, or a plain password where the value is a
    literal (quoted: `literal`=True; unquoted: where `_literal_context` says so, `literal`=None)."""
    def check(value: str, found: Value, text: str) -> bool:
        if literal is None and text.endswith("${", 0, _before_name(found, text) + 1):
            return False  # a shell expansion, ${DB_PASSWORD:?required}: what follows is not its value
        is_literal = literal if literal is not None else _literal_context(found, text)
        if NOT_LITERAL.search(value) or not is_literal and code_reference(value):
            return False
        if "public" in _name_words(found.name):  # publicKeyToken, public_key: published on purpose
            return False
        if _random_value(value, found.name, config):
            return True
        return is_literal and is_password_name(found.name) and plain_password(value, found.name)
    return check


def _bare_check(config: PiiConfig) -> Check:
    """A whole line `NAME: value` (YAML) or `NAME=value` (.env, shell): a plain password after a
    colon or an environment variable's name; in code, `password = credentials` is a reference."""
    assigned = _assigned_check(config)
    reference = _assigned_check(config, literal=None)

    def check(value: str, found: Value, text: str) -> bool:
        position = found.start
        while position > 0 and text[position - 1] in " \t":
            position -= 1
        colon = position > 0 and text[position - 1] == ":"
        return (assigned if colon else reference)(value, found, text)
    return check


def _call_check(config: PiiConfig) -> Check:
    """`client.SetAuthToken("...")`, `setPassword("...")`: a setter of a secret, called with a
    literal; a getter (`get_secret("name")`) or a tokenizer's call is not one."""
    assigned = _assigned_check(config)

    def check(value: str, found: Value, text: str) -> bool:
        words = _name_words(found.name.rsplit(".", 1)[-1])
        if not words or not any(w.endswith(SECRET_PARTS) for w in words):
            return False
        if words[0] not in SETTER_VERBS and not words[0].endswith(SECRET_PARTS):
            return False
        return assigned(value, found, text)
    return check


PASS_PHRASE_SOURCE = re.compile(r"(?:pass|env|file|fd):|stdin$")


def _flag_check(config: PiiConfig) -> Check:
    """`--password hunter2`, `-passin pass:hunter2`, `sshpass -p hunter2`: a password or token on a
    command line; a metavar (`--password TEXT`) or a variable (`$PASS`) is not one."""
    def check(value: str, found: Value, text: str) -> bool:
        if PASS_PHRASE_SOURCE.match(value):  # openssl's -password env:VAR, file:path, fd:3, stdin; pass:... apart
            return False
        if not found.name or is_password_name(found.name) or "pass" in found.name:
            return plain_password(value, found.name or "password") or _random_value(value, "password", config)
        return _random_value(value, found.name, config)
    return check


def _basic_auth_ok(value: str, found: Value, text: str) -> bool:
    """`Basic dXNlcjpwYXNz`: base64 of `user:password`, printable, the password not a placeholder."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    return (bool(colon and user and password) and decoded.isprintable()
            and _url_password_ok(password, found, text) and not UUID.match(user))


def _jwt_ok(value: str, found: Value, text: str) -> bool:
    """A JWT: a claims part that is JSON too (`eyJ...`), or a header that decodes to one with `alg`
    or `typ` (a JWT inside a word or an URL-encoded header, or with claims not starting `{"`)."""
    if any(example in value for example in DOCUMENTED_EXAMPLES):
        return False
    header, _, rest = value.partition(".")
    before = text[found.start - 1] if found.start else ""
    if rest.startswith("eyJ") and not (before.isalnum() or before == "_"):
        return True
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    return decoded.startswith("{") and ('"alg"' in decoded or '"typ"' in decoded)


def _hash_ok(value: str, found: Value, text: str) -> bool:
    """A password hash ($2b$..., $argon2id$..., $6$..., pbkdf2_sha256$...) whose digest looks random."""
    digest = value.rsplit("$", 1)[-1]
    return entropy(digest) >= 3.0


def _seed_ok(value: str, found: Value, text: str) -> bool:
    return entropy(value) >= 3.5  # not `SUAAAAAAAA...`


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
KEY_BODY = re.compile(r"[A-Za-z0-9+/=\s:,.()@\\-]*")  # \ : a key in a JSON string, "\n" escaped; () @ : PGP armor
SPACES = re.compile(r"(?:\s|\\[nr])*")


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
            value = Value(body, _body_end(text, body, closing))
        elif body > header_end and (at := bisect_left(closings, body)) < len(closings) and closings[at] == body:
            closing = body  # only white space before END: the body is its last character, as `re` backtracked
            value = Value(body - 1, body)
        else:
            continue
        taken = closing + len("-----END ") + len(label) + 5
        yield value


def _body_end(text: str, start: int, end: int) -> int:
    """Where a key body in text[start:end] ends: before the white space and escaped newlines
    ("\\n", "\\r") at its end. One step a character, no copy: linear in the run."""
    while end > start:
        if text[end - 1].isspace():
            end -= 1
        elif end - 2 >= start and text[end - 2] == "\\" and text[end - 1] in "nr":
            end -= 2
        else:
            break
    return end


# A PuTTY key file (.ppk) holds its private key as base64 lines after `Private-Lines: N` (N
# is at most 64 here: an RSA-4096 key takes 28); the window of such a line runs through them.
PUTTY_LINES = re.compile(r"Private-Lines:[ \t]*([0-9]{1,3})[ \t]*\r?\n")
PUTTY_MAX_LINES = 64


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
            Rule("jwt", KEY, _re2(r"(?P<v>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"), _jwt_ok),
            Rule("url_password", PASSWORD, _re2(
                rf"(?:^|[^{WORD}])[a-z][a-z0-9+.-]*://[^{SPACE}:/@\"'`]+:(?P<v>[^{SPACE}@/\"'`]+)@"),
                _url_password_ok),
            # HTTP authorization: `Basic base64(user:password)`, `Bearer ...`, `Token ...`
            Rule("basic_auth", PASSWORD, _re2(
                rf"(?:^|[^{WORD}])(?i:basic)(?:[ \t]+|%20)(?P<v>[A-Za-z0-9+/]{{6,}}={{0,2}})(?:$|[^A-Za-z0-9+/=])"),
                _basic_auth_ok),
            Rule("bearer_token", KEY, _re2(
                rf"(?:^|[^{WORD}])(?i:bearer|token)[ \t]+(?P<v>[A-Za-z0-9._~+/-]{{16,}}=*)(?:$|[^A-Za-z0-9._~+/=-])"),
                _assigned_check(config, literal=False)),
            # command lines: openssl's `-passin pass:...`, `sshpass -p ...`, `mysql -p...`, `--password ...`
            Rule("openssl_pass", PASSWORD, _re2(  # also quoted, or as the next item of an argument list
                rf"-pass(?:in|out|word)?[\"']?(?:[ \t]+|,[ \t]*)[\"']?pass:(?P<v>[^{SPACE}\"'`]{{1,200}})"),
                _flag_check(config)),
            Rule("cli_password", PASSWORD, _re2(
                rf"(?:sshpass[ \t]+-p[ \t]*|mysql[^\n]*[ \t]-p)(?P<v>[^-{SPACE}\"'`][^{SPACE}\"'`]{{0,199}})"),
                _flag_check(config)),
            Rule("cli_flag", KEY, _re2(
                rf"(?:^|[{SPACE}\"'`(])--?(?P<n>(?i:password|passwd|pass|pwd|passphrase|api[_-]?key|token|secret"
                r"|client[_-]secret|auth[_-]token|access[_-]token))[ \t]+[\"']?"
                rf"(?P<v>[^-{SPACE}\"'`$<{{\[][^{SPACE}\"'`]{{0,199}})"), _flag_check(config), password_by_name=True),
            Rule("curl_user", PASSWORD, _re2(
                rf"curl[ \t](?:[^\n]*?[ \t])?(?:-u|--user)[ \t=]+[\"']?[^{SPACE}:\"'@]{{1,100}}:"
                rf"(?P<v>[^{SPACE}\"'@]{{1,200}})"), _url_password_ok),
            # NATS NKEY seeds (S, the key type, A, then base32) and password or token hashes
            Rule("nkey_seed", KEY, _re2(r"(?:^|[^A-Za-z0-9])(?P<v>S[ACNOPUX]A[A-Z2-7]{55})(?:$|[^A-Za-z0-9])"),
                 _seed_ok),
            Rule("password_hash", KEY, _re2(
                r"(?P<v>\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}"
                r"|\$argon2(?:id|i|d)\$v=[0-9]{1,3}\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}\$[A-Za-z0-9+/]{8,128}"
                r"\$[A-Za-z0-9+/]{16,128}"
                r"|\$[56]\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}"
                r"|pbkdf2_sha(?:1|256|512)\$[0-9]{1,7}\$[A-Za-z0-9./+]{1,64}\$[A-Za-z0-9./+]{20,88}={0,2})"
                r"(?:$|[^./A-Za-z0-9+=$])"), _hash_ok),
            Rule("putty_private_key", KEY, _re2(  # the base64 lines after the marker, up to 64
                r"Private-Lines:[ \t]*[0-9]{1,3}[ \t]*\r?\n(?P<v>(?:[A-Za-z0-9+/=]+\r?\n){0,63}[A-Za-z0-9+/=]+)"
                r"(?:\r?\n|$)"), _private_key_ok),
        ]
        words = rf"{SECRET_WORDS}|passwd|password|pwd|pass"
        name = rf"(?i:[{WORD}.-]*(?:{words})[{WORD}.-]*)"
        esc = r"\\{0,3}"  # a JSON string inside a string escapes its quotes: \"token\": \"...\"
        # NAME = 'value', in any of three quotes, the same at both ends
        value = rf"{esc}(?P<q>[\"'`])(?P<v>[^\"'`\\{SPACE}]{{1,200}}){esc}(?P<close>[\"'`])"
        quoted = rf"{esc}[\"']?\]?[{SPACE}]*(?::=|=>|[:=])[{SPACE}]*{value}"  # ]: headers["X-Api-Key"] = ...
        # `("password", "...")`: as often a tuple of names as a name and its value, so random values only
        pair = rf"{esc}[\"'][{SPACE}]*,[{SPACE}]*{value}"
        # the same in HTML, its quotes escaped: {&quot;password&quot;: &quot;...&quot;}
        entity_quote = r"(?:&quot;|&#34;|&#39;)"
        html_quoted = (rf"{entity_quote}?[{SPACE}]*[:=][{SPACE}]*(?P<q>&quot;|&#34;|&#39;)"
                       rf"(?P<v>[^&<>\"'`\\{SPACE}]{{1,200}})(?P<close>&quot;|&#34;|&#39;)")
        # unquoted, as a whole line of a .env, INI, YAML or shell file or a YAML list: NAME=value
        line_start = r"^[ \t]*(?:(?:export|ENV|set|-)[ \t]+)?"
        bare = rf"[ \t]*[:=][ \t]*(?P<v>[^{SPACE}\"'`#;,()\[\]{{}}<>$]{{1,200}})[ \t]*(?:#.*)?$"
        # unquoted, within a line: `-e DB_PASSWORD=...`, `?api_key=...&`, `# auth token: 4c91...`
        unquoted = rf"[^{SPACE}\"'`#;,()\[\]{{}}<>$&|\\]"
        inline = rf"[ \t]*[:=][ \t]*(?P<v>{unquoted}{{1,200}})(?:[{SPACE}\"'`#;,()\[\]{{}}<>$&|\\]|$)"
        inline_head = rf"(?m)(?:[^{WORD}.-]|^)"
        # a setter called with a literal: client.SetAuthToken("..."), setPassword('...')
        call = rf"[{SPACE}]*\([{SPACE}]*{value}"
        found += [
            AssignedRule("assigned_secret", KEY, _re2(_without_groups(name + quoted)), _assigned_check(config),
                         password_by_name=True, tail=_re2(quoted)),
            AssignedRule("assigned_pair", KEY, _re2(_without_groups(name + pair)),
                         _assigned_check(config, literal=False), password_by_name=True, tail=_re2(pair)),
            AssignedRule("assigned_secret_html", KEY, _re2(_without_groups(name + html_quoted)),
                         _assigned_check(config), password_by_name=True, tail=_re2(html_quoted)),
            AssignedRule("assigned_secret_bare", KEY, _re2("(?m)" + _without_groups(line_start + name + bare)),
                         _bare_check(config), password_by_name=True, head=_re2("(?m)" + line_start),
                         tail=_re2("(?m)" + bare)),
            AssignedRule("assigned_secret_inline", KEY, _re2(_without_groups(inline_head + name + inline)),
                         _assigned_check(config, literal=None), password_by_name=True, head=_re2(inline_head),
                         tail=_re2(inline)),
            AssignedRule("assigned_call", KEY, _re2(_without_groups(name + call)), _call_check(config),
                         password_by_name=True, tail=_re2(call)),
            Rule("xml_secret", KEY, _re2(
                rf"<(?P<n>(?i:[A-Za-z0-9_:.-]{{0,32}}(?:{words})[A-Za-z0-9_:.-]{{0,32}}))>[ \t]*"
                rf"(?P<v>[^<>&{SPACE}]{{1,200}})[ \t]*</"), _assigned_check(config), password_by_name=True),
            # a table of settings and their values: | `DB_PASSWORD` | `...` |, <td>DB_PASSWORD</td><td>...</td>
            Rule("table_secret", KEY, _re2(
                rf"\|[ \t]*`?(?P<n>(?i:[A-Za-z0-9_.-]{{0,32}}(?:{words})[A-Za-z0-9_.-]{{0,32}}))`?[ \t]*\|[ \t]*`?"
                rf"(?P<v>[^|`<>{SPACE}]{{1,200}})`?[ \t]*\|"), _assigned_check(config), password_by_name=True),
            Rule("html_table_secret", KEY, _re2(
                rf"<t[dh]>[ \t]*(?:<code>)?(?P<n>(?i:[A-Za-z0-9_.-]{{0,32}}(?:{words})[A-Za-z0-9_.-]{{0,32}}))"
                rf"(?:</code>)?[ \t]*</t[dh]>[ \t]*<td>[ \t]*(?:<code>)?(?P<v>[^<>{SPACE}]{{1,200}})(?:</code>)?"
                r"[ \t]*</td>"),
                _assigned_check(config), password_by_name=True),
            # a Kubernetes container's env: `- name: DB_PASSWORD` then `value: ...` on the next line
            Rule("name_value_pair", KEY, _re2(
                rf"(?i:name)[ \t]*:[ \t]*[\"']?(?P<n>(?i:[A-Za-z0-9_.-]{{0,32}}(?:{words})[A-Za-z0-9_.-]{{0,32}}))"
                rf"[\"']?[ \t]*\r?\n[ \t]*(?i:value)[ \t]*:[ \t]*[\"']?(?P<v>[^\"'#{SPACE}]{{1,200}})"),
                _assigned_check(config), password_by_name=True),
            Rule("html_password_input", PASSWORD, _re2(
                rf"(?i:<input)[^<>]*?[{SPACE}](?i:type)=[\"']?(?i:password)[\"']?[^<>]*?[{SPACE}](?i:value)="
                r"[\"'](?P<v>[^\"'<>]{1,200})[\"']"), _flag_check(config)),
            Rule("html_password_input_value_first", PASSWORD, _re2(
                rf"(?i:<input)[^<>]*?[{SPACE}](?i:value)=[\"'](?P<v>[^\"'<>]{{1,200}})[\"'][^<>]*?[{SPACE}]"
                r"(?i:type)=[\"']?(?i:password)"), _flag_check(config)),
        ]
    return [replace(rule, needs=RULE_NEEDS.get(rule.name, ())) for rule in found]


# What every match of a rule holds, case-folded (tests/filters/test_secrets.py checks that the
# findings are the same without them). A secret's name holds one of NAME_NEEDS.
NAME_NEEDS = ("secret", "token", "key", "nonce", "pass", "pwd")
RULE_NEEDS = {
    "email": ("@",), "aws_access_key_id": ("akia", "asia", "abia", "acca"), "aws_secret_access_key": ("aws",),
    "github_token": ("gh", "github_pat_"), "gitlab_token": ("glpat-",), "slack_token": ("xox",),
    "slack_webhook": ("hooks.slack.com",), "stripe_key": ("k_live_", "k_test_"), "google_api_key": ("aiza",),
    "jwt": ("eyj",), "url_password": ("://",), "basic_auth": ("basic",), "bearer_token": ("bearer", "token"),
    "openssl_pass": ("pass:",), "cli_password": ("sshpass", "mysql"), "cli_flag": NAME_NEEDS, "curl_user": ("curl",),
    "nkey_seed": tuple(f"s{kind}a" for kind in "acnopux"), "password_hash": ("$",),
    "putty_private_key": ("private-lines:",), "assigned_secret": NAME_NEEDS, "assigned_pair": NAME_NEEDS,
    "assigned_secret_html": ("&quot;", "&#34;", "&#39;"), "assigned_secret_bare": NAME_NEEDS,
    "assigned_secret_inline": NAME_NEEDS, "assigned_call": ("(",), "xml_secret": ("</",), "table_secret": ("|",),
    "html_table_secret": ("<td", "<th"), "name_value_pair": ("value",), "html_password_input": ("<input",),
    "html_password_input_value_first": ("<input",)}


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

        folded = self.folded = [""]  # the text being analyzed, case-folded: read by every recognizer

        class CodeRecognizer(EntityRecognizer):
            def __init__(self, rule: Rule):
                self.rule = rule
                entities = [rule.entity, PASSWORD] if rule.password_by_name else [rule.entity]
                super().__init__(supported_entities=entities, name=rule.name)

            def load(self) -> None:
                pass

            def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list:
                if self.rule.needs and not any(need in folded[0] for need in self.rule.needs):
                    return []
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
        self.folded[0] = text.casefold()  # for the rules' `needs`, once for all of them
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
        elif (putty := PUTTY_LINES.match(content, hit_start)) is not None:  # the key's lines follow
            end_at = putty.end()
            for _ in range(min(int(putty.group(1)), PUTTY_MAX_LINES) - 1):
                end_at = content.find("\n", end_at) + 1 or len(content)
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
