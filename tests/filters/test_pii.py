"""PII: every recognizer finds its positives and leaves its look-alikes; redaction leaves no
fragment of a value; the stage counts per type and never keeps a value."""

from __future__ import annotations

import pytest

from corpus_core.records import FileRecord
from filters.pii import IPV4_REPLACEMENTS, IPV6_REPLACEMENTS, PiiConfig, PiiRedactor

# random-looking values of the real formats, made up for these tests: none is a live secret
AWS_ID = "AKIA" + "QX7ZLMB2RT4KW9PD"
AWS_SECRET = "q8Zr/3kLw0XbT7uYv2NcPm5Hs9JdGf4AeR1tKoWz"
GITHUB = "ghp_" + "R7kq2LmZ8xWv4Tn0bPy6Hc3Js9Df5Ga1Qe7U"
GITLAB = "glpat-" + "Xk3m9Qz2Lw7Rt5Yv1Bn4"
SLACK = "xoxb-" + "2381946127-4820157391-Kd8Qm2Zx7Lp4Wt9Rv3Nc"
STRIPE = "sk_live_" + "51Hx8Kq2Lm9Zt4Rw7Yv3Nb"
GOOGLE = "AIza" + "SyD7kq2LmZ8xWv4Tn0bPy6Hc3Js9Df5Ga1Q"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
KEY_BODY = ("MIIEowIBAAKCAQEAr9Zk2Lq8Xw3Tn7Yb4Hc1Jd6Gf0Ae5Rk9Wm2Qz8Lx7Vt4Py3N\n"
            "b6Hs1Jd9Gf4Ae7Rk2Wm5Qz0Lx3Vt8Py1Nb4Hs7Jd2Gf9Ae0Rk5Wm8Qz3Lx6Vt1Py")

POSITIVES = [
    ("EMAIL", "# Author: Jane Roe <{}>\n", "jane.roe@corp-mail.io"),
    ("EMAIL", "maintainer = '{}'\n", "dev.team+ci@mail.acme-widgets.co.uk"),
    ("IP_ADDRESS", 'HOST = "{}"\n', "93.184.216.34"),
    ("IP_ADDRESS", "connect(('{}', 443))\n", "203.0.114.7"),
    ("IP_ADDRESS", "server {};\n", "2a00:1450:4001:82a::200e"),
    ("KEY", "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n", KEY_BODY),
    ("KEY", 'aws_access_key_id = "{}"\n', AWS_ID),
    ("KEY", "AWS_SECRET_ACCESS_KEY={}\n", AWS_SECRET),
    ("KEY", 'token = "{}"\n', GITHUB),
    ("KEY", "GITLAB = '{}'\n", GITLAB),
    ("KEY", "slack({!r})\n", SLACK),
    ("KEY", 'stripe.api_key = "{}"\n', STRIPE),
    ("KEY", 'const k = "{}";\n', GOOGLE),
    ("KEY", "Authorization: Bearer {}\n", JWT),
    ("KEY", 'client_secret = "{}"\n', "9fK2mQ7xL4zR8wT1"),
    ("PASSWORD", 'DB_PASSWORD = "{}"\n', "Tr0ub4dor&3xQ"),
    ("PASSWORD", "url = 'postgres://admin:{}@db.internal.acme.io/app'\n", "S3cretPassw0rd"),
    ("PASSWORD", "DB_PASSWORD={}\n", "hW7kq2LmZ8xV"),  # a .env line
    ("KEY", "  api_key: {}  # prod\n", "k8Zr3LwXbT7uYv2N"),  # YAML
]

NEGATIVES = [
    'version = "1.2.3.4"\n',  # a version, not an address
    "__version__ = '2.10.0.1'\n",
    "requires = ['pkg>=1.2.3.4']\n",
    'LOCAL = "192.168.1.10"; LOOP = "127.0.0.1"; TEN = "10.0.0.8"\n',  # private, loopback
    'DOCS = "192.0.2.1"; DNS = ["8.8.8.8", "1.1.1.1"]; V6 = "2001:db8::1"\n',  # documentation, DNS
    "oid = '1.3.6.1.4.1.311'\n",  # an OID: more than four numbers
    'contact = "user@example.com"  # a documentation address\n',
    "icon = 'logo@2x.png'\n",
    "git clone git@github.com:acme/tools.git\n",
    "@property\ndef name(self): return self._name\n",
    'import pkg from "@babel/core";\n',
    'id = "123e4567-e89b-12d3-a456-426614174000"\n',  # a UUID
    '"integrity": "sha512-Vx7bYqZ3kLm9PzT2wR8nQ4hJ6cF1dS5aG0eU3iO7pK2lM9xN8vB4cZ1yT6rE5wQ=="\n',  # a lock file
    '  resolved "https://registry.yarnpkg.com/x/-/x-1.0.0.tgz#3f786850e387550fdab836ed7e6dc881de23001b"\n',
    'img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"\n',
    "password = get_password()\n",
    'password = "changeme"\n',
    'PASSWORD = "<your password here>"\n',
    'api_key = os.environ["API_KEY"]\n',
    'token = "${GITHUB_TOKEN}"\n',
    'secret = "xxxxxxxxxxxxxxxx"\n',
    'password_field = "password_confirmation"\n',
    'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"\n',  # AWS's documented example
    "url = 'postgres://user:password@localhost/db'\n",
    "std::map<std::string, int> m; a::b::c();\n",
    'time = "12:34:56"; mac = "00:1a:2b:3c:4d:5e"\n',
    "-----BEGIN PRIVATE KEY-----\n",  # a marker string, no key in it
    "DB_PASSWORD=${DB_PASSWORD}\npassword: !vault |\ntoken = tokens[0]\napi_key = self.api_key\n",
    "    password = pw\n    secret = compute_secret(key)\n",
]


@pytest.fixture(scope="module")
def stage():
    return PiiRedactor(PiiConfig())


def redact(stage, content: str) -> FileRecord:
    record = FileRecord("o/r", "f.py", len(content), content=content)
    stage.process(record)
    return record


@pytest.mark.parametrize("entity, template, value", POSITIVES, ids=[f"{p[0]}-{i}" for i, p in enumerate(POSITIVES)])
def test_each_recognizer_finds_its_positive_and_leaves_no_fragment(stage, entity, template, value):
    content = "def f():\n    return 1\n" + template.format(value) + "x = 2\n"
    record = redact(stage, content)
    assert [f["type"] for f in record.pii_findings] == [entity]
    finding = record.pii_findings[0]
    assert content[finding["start"]:finding["end"]] == value  # offsets in the original content
    for size in (6, 8):  # no piece of the value survives
        assert not any(value[i:i + size] in record.content for i in range(len(value) - size + 1)
                       if value[i:i + size].strip() and value[i:i + size] not in content.replace(value, ""))
    assert record.pii_redactions == 1 and getattr(record, f"pii_{entity.lower()}") == 1
    if entity == "IP_ADDRESS":
        assert any(r in record.content for r in IPV4_REPLACEMENTS + IPV6_REPLACEMENTS)
    else:
        assert f"<{entity}>" in record.content


@pytest.mark.parametrize("content", NEGATIVES, ids=range(len(NEGATIVES)))
def test_look_alikes_are_left_alone(stage, content):
    record = redact(stage, content)
    assert record.pii_findings == [] and record.content == content and record.pii_redactions == 0


def test_same_value_same_replacement_and_counts_per_type(stage):
    content = ('a = "93.184.216.34"\nb = "93.184.216.34"\nc = "151.101.1.69"\n'
               "mail = 'jane.roe@corp-mail.io'  # and jane.roe@corp-mail.io\n"
               f'DB_PASSWORD = "Tr0ub4dor&3xQ"\ntoken = "{GITHUB}"\n')
    record = redact(stage, content)
    lines = record.content.splitlines()
    assert lines[0].split('"')[1] == lines[1].split('"')[1] != "93.184.216.34"
    assert lines[3] == "mail = '<EMAIL>'  # and <EMAIL>"
    assert (record.pii_email, record.pii_ip_address, record.pii_key, record.pii_password) == (2, 3, 1, 1)
    assert record.pii_redactions == 7 and stage.stats.notes["EMAIL"] >= 2


def test_settings_turn_kinds_off():
    content = 'HOST = "93.184.216.34"\nmail = "jane.roe@corp-mail.io"\n'
    record = redact(PiiRedactor(PiiConfig(ip_addresses=False)), content)
    assert [f["type"] for f in record.pii_findings] == ["EMAIL"]
    assert redact(PiiRedactor(PiiConfig(enabled=False)), content).content == content


def test_the_gates_find_what_their_look_behind_first_forms_find():
    """The gates put a literal first for speed; they must match exactly where the plain
    look-behind-first patterns match, on text dense in @ . : and hex digits."""
    import random
    import re

    from filters.pii import GATES

    plain = [r"(?<=\w)@[\w-]+\.[A-Za-z]", r"(?<=\d)\.\d{1,3}\.\d{1,3}\.\d",
             r"(?<=[0-9A-Fa-f]):[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"]
    rng = random.Random(7)
    text = "".join(rng.choice("ab9F0_-@.: \n") for _ in range(200_000)) + " jane@corp.io 10.1.2.3 fe80::1:2: "
    for gate, reference in zip(GATES, plain, strict=False):
        assert [m.span() for m in gate.finditer(text)] == [m.span() for m in re.finditer(reference, text)]
        assert gate.search(text)


def test_known_shapes_apart_select_the_lines_the_alternation_selected(monkeypatch):
    """The known-shape gate is eleven patterns instead of one alternation: matches may overlap
    where the alternation's could not, but no match spans a line, so the lines selected
    (and a key block's run to its END line) are the same."""
    import random
    import re

    from filters import pii

    alternation = re.compile(r"-----BEGIN|A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{8}|gh[pousr]_|github_pat_|glpat-|"
                             r"xox[abposr]-|hooks\.slack\.com|[sr]k_(?:live|test)_|AIza|eyJ|Private-Lines:")
    rng = random.Random(11)
    pieces = ["-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "AKIAABCDEFGH1234",
              "ghp_x", "github_pat_1", "glpat-9", "xoxb-1", "hooks.slack.com", "sk_live_", "rk_test_", "AIzaX",
              "eyJhb", "eyJ-----BEGIN", "ghs_AKIA12345678", "x = 1", "\n", " ", "k_live_", "A", "Private-Lines: 2\n"]
    text = "".join(rng.choice(pieces) for _ in range(30_000))
    split = pii._windows(text)
    first_known = 3  # after the e-mail, IPv4 and IPv6 gates
    known = len(pii.GATES) - first_known - 1
    monkeypatch.setattr(pii, "GATES", (*pii.GATES[:first_known], alternation, *pii.GATES[first_known + known:]))
    assert split == pii._windows(text)
    assert len(split) > 1000


# The recognizers in `re`, with look-arounds and backreferences (as they were before RE2, for
# the old ones): the RE2 forms must find the same values (and names) on text dense in their
# shapes, Unicode included.
OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
NAME = (r"(?P<name>(?i:[\w.-]*(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|consumer[_-]?key"
        r"|oauth[_-]?nonce|passwd|password|pwd|pass)[\w.-]*))")
ESC = r"\\{0,3}"  # a JSON string inside a string: \"token\": \"...\"
QUOTED_VALUE = ESC + r"(?P<q>[\"'`])(?P<v>[^\"'`\\\s]{1,200})" + ESC + r"(?P=q)"
UNQUOTED = r"[^\s\"'`#;,()\[\]{}<>$&|\\]"
RE_FORMS = {
    "email": r"(?<![\w.+%:/-])(?P<v>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
             r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w-])",
    "ipv4": rf"(?<![\w.])(?P<v>{OCTET}\.{OCTET}\.{OCTET}\.{OCTET})(?![\w]|\.[\d*]|-\w)",
    "ipv6": r"(?<![\w:.])(?P<v>(?:[0-9A-Fa-f]{1,4}:|:){2,7}(?:[0-9A-Fa-f]{1,4}|:))(?![\w:.])",
    "private_key": r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----(?:\s|\\[nr])*"
                   r"(?P<v>[A-Za-z0-9+/=\s:,.()@\\-]+?)(?:\s|\\[nr])*-----END (?P=label)-----",
    "aws_access_key_id": r"(?<![A-Z0-9])(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])",
    "aws_secret_access_key": r"(?i:aws[A-Za-z0-9_.-]{0,20}(?:secret|key)[A-Za-z0-9_.-]{0,20})[\"']?\s*[:=]\s*[\"']?"
                             r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",  # the name's letters: ASCII (see the rule)
    "github_token": r"(?P<v>\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{82}))\b",
    "gitlab_token": r"(?P<v>\bglpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])",
    "slack_token": r"(?P<v>\bxox[abposr]-[A-Za-z0-9-]{10,})",
    "slack_webhook": r"hooks\.slack\.com/services/(?P<v>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)",
    "stripe_key": r"(?P<v>\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,})\b",
    "google_api_key": r"(?P<v>\bAIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])",
    "jwt": r"(?P<v>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
    "url_password": r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'`]+:(?P<v>[^\s@/\"'`]+)@",
    "assigned_secret": NAME + ESC + r"[\"']?\]?\s*(?::=|=>|[:=])\s*" + QUOTED_VALUE,
    "assigned_pair": NAME + ESC + r"[\"']\s*,\s*" + QUOTED_VALUE,
    "assigned_secret_html": NAME + r"(?:&quot;|&#34;|&#39;)?\s*[:=]\s*(?P<q>&quot;|&#34;|&#39;)"
                            r"(?P<v>[^&<>\"'`\\\s]{1,200})(?P=q)",
    "assigned_secret_bare": r"(?m)^[ \t]*(?:(?:export|ENV|set|-)[ \t]+)?" + NAME + r"[ \t]*[:=][ \t]*"
                            r"(?P<v>[^\s\"'`#;,()\[\]{}<>$]{1,200})[ \t]*(?:#.*)?$",
    "assigned_secret_inline": r"(?m)(?<![\w.-])" + NAME + rf"[ \t]*[:=][ \t]*(?P<v>{UNQUOTED}{{1,200}})(?!{UNQUOTED})",
    "assigned_call": NAME + r"\s*\(\s*" + QUOTED_VALUE,
}
SHAPES = {  # whole values and pieces of them, joined at random with NOISE
    "email": ["jane.roe@corp-mail.io", "a@b.cd", "x@y", "@", ".", "-", "+", "%", ":", "/", "corp", "io"],
    "ipv4": ["93.184.216.34", "1.2.3.4", "255.255.255.255", "256.1.1.1", ".", "-", "*", "a", "5", "\u0663"],
    "ipv6": ["2a00:1450:4001:82a::200e", "fe80::1", "::", ":", "abcd", "12345", "g", "."],
    "private_key": ["-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
                    "-----BEGIN EC PRIVATE KEY-----", "-----END EC PRIVATE KEY-----",
                    "-----BEGIN PGP PRIVATE KEY BLOCK", "-----END PGP PRIVATE KEY BLOCK", "-----",
                    "MIIBOgIBAAJBAKj34GkxFhD9", "Proc-Type: 4,ENCRYPTED", "Version: GnuPG v1 (GNU/Linux)", "\n",
                    "\u2028", '"'],
    "aws_access_key_id": ["AKIAQX7ZLMB2RT4KW9PD", "ASIA1234567890ABCDEF", "AKIA", "Z", "9", "a", "-"],
    "aws_secret_access_key": ["aws_secret_access_key = '", "AWS_KEY=", 'aws_x_key: "',
                              "q8Zr/3kLw0XbT7uYv2NcPm5Hs9JdGf4AeR1tKoWz", "q8Zr/3kLw0", "+", "'", "="],
    "github_token": ["ghp_R7kq2LmZ8xWv4Tn0bPy6Hc3Js9Df5Ga1Qe7U", "github_pat_" + "a1" * 41, "ghp_", "R7kq2", "_", "-"],
    "gitlab_token": ["glpat-Xk3m9Qz2Lw7Rt5Yv1Bn4", "glpat-", "Xk3m9", "-", "_"],
    "slack_token": ["xoxb-", "xoxp-", "2381946127", "-", "Kd8"],
    "slack_webhook": ["hooks.slack.com/services/T0AB/B1CD/x9Yz", "hooks.slack.com/services/", "T0", "/B1", "/", "x9"],
    "stripe_key": ["sk_live_51Hx8Kq2Lm9Zt4Rw7Yv3Nb", "rk_test_", "51Hx8Kq2Lm9Zt4Rw", "_", "x"],
    "google_api_key": ["AIzaSyD7kq2LmZ8xWv4Tn0bPy6Hc3Js9Df5Ga1Q", "AIza", "SyD7k", "-", "_"],
    "jwt": ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP", "eyJ", "hbGciOiJ", ".", "-", "_"],
    "url_password": ["postgres://admin:S3cret@db.io", "https://", "u:p@", "://", "admin", ":", "S3cret", "@", "/", "a.",
                     "'"],
    "assigned_secret": ["password = 'Tr0ub4dor&3xQ'", "token=", 'api_key: "', "pass", "=", ":", "=>", ":=", "'", '"',
                        "`", "\\", '\\"', "]", "Tr0ub4dor&3xQ", "/" * 205, "\u212a", "\u017f", "-", ".", "oauth_nonce"],
    "assigned_pair": ['"password", "Tr0ub4dor&3xQ"', '("token"', ",", "'", '"', "`", "\\", "Tr0ub4dor&3xQ", "/" * 205,
                      "consumer_key", "\u017f"],
    "assigned_secret_html": ["&quot;password&quot;: &quot;sunshine&quot;", "&#34;", "&#39;", "&quot;", "token", ":",
                             "=", "sunshine", "&", "/" * 205],
    "assigned_secret_bare": ["password=Tr0ub4dor&3xQ", "export API_KEY=", "api_key: ", "- ", "ENV ", "set ", "=", ":",
                             "Tr0ub4dor&3xQ", "/" * 205, "#", "\n", "$", ";"],
    "assigned_secret_inline": ["DB_PASSWORD=hunter2", "?api_key=", "&", "--password=", "token: ", "=", ":", "-", ".",
                               "Tr0ub4dor3xQ", "/" * 205, "#", "\n", "$", ";", '"', "\\", "\u017f"],
    "assigned_call": ['client.SetAuthToken("', "setPassword(", "token", "(", "'", '"', "\\", "Tr0ub4dor&3xQ",
                      "/" * 205, ".", "\u212a"],
}
NOISE = [" ", "\n", "\t", "x", "_", "\u00e9", "\u00a0", "\ud800"]  # a letter, a space and a lone surrogate beyond ASCII


@pytest.mark.parametrize("name", RE_FORMS)
def test_each_rule_finds_what_its_re_form_found(name):
    import random
    import re

    from filters.pii import Utf8Text, rules

    rule = next(r for r in rules(PiiConfig()) if r.name == name)
    reference = re.compile(RE_FORMS[name])
    rng = random.Random(name)
    found = 0
    for _ in range(800):
        text = "".join(rng.choice(SHAPES[name] + NOISE) for _ in range(rng.randint(1, 20)))
        expected = [(m.start("v"), m.end("v"), m.group("name") if "name" in reference.groupindex else "")
                    for m in reference.finditer(text)]
        assert [tuple(v) for v in rule.values(Utf8Text(text))] == expected, text
        found += len(expected)
    assert found > 50


def test_the_name_gate_matches_what_its_re_form_matched():
    """As its any-case `re` form (the gate used to lower the text first, which missed `ſecret`)."""
    import random
    import re

    from filters.pii import GATE_NAMES, Utf8Text

    reference = re.compile(
        r"(?i:(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|consumer[_-]?key|oauth[_-]?nonce"
        r"|passw|pwd)[\w.-]*|pass(?:[.-][\w.-]*)?)"
        r"(?:\\{0,3}[\"']?\]?\s*[:=]|(?:&quot;|&#3[49];)\s*[:=]|\\{0,3}[\"']\s*,|\s*\(\s*\\{0,3}[\"'`]"
        r"|[ \t]+[A-Za-z0-9+/]{16}|>[A-Za-z0-9]|`?[ \t]*\||(?:</code>)?</t[dh]>)"
        r"|(?i:basic|bearer)(?:[ \t]+|%20)[A-Za-z0-9+/_.~=-]{8}|\$2[abxy]?\$[0-9]{2}\$|\$argon2|\$[56]\$|pbkdf2_sha"
        r"|(?i:type)=[\"']?(?i:password)|S[ACNOPUX]A[A-Z2-7]{55}"
        r"|-(?i:password|passwd|pass|pwd|passphrase|api[_-]?key|token|secret|client[_-]secret|auth[_-]token"
        r"|access[_-]token)[ \t]+[\"']?[^-\s\"'$<{\[]|(?i:sshpass)[ \t]|mysql[^\n]*[ \t]-p[^ \t\n]"
        r"|curl[^\n]*[ \t](?:-u|--user)[ \t=]"
        r"|(?i:name)[ \t]*:[ \t]*[\"']?[A-Za-z0-9_.-]*(?i:passw|secret|token|api[_-]?key)[A-Za-z0-9_.-]*[\"']?"
        r"[ \t]*\r?\n[ \t]*(?i:value)[ \t]*:")
    pieces = ["password", "pass", "pass.x", "pass\u00e9", "token", "TOKEN", "\u017fecret", "to\u212aen", "api-key", "=",
              ":", "'", '"', " ", "\n", "\u00a0", "\u2028", "x", "\ud800", "\\", "]", "&quot;", ",", "(", "`", ">",
              "4c9184f37cff01bcdc32dc486ec36961", "Basic ", "dXNlcjpwYXNz", "$2b$12$", "$argon2", "pbkdf2_sha",
              "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY", "curl ", "-u ", "mysql ", "-pX",
              "sshpass ", "--password ", "type=", "|", "</td>", "</code>", "%20", "name: ", "value:", "Private-Lines:",
              "oauth_nonce", "consumer_key", "\t", "-"]
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        utf8 = Utf8Text(text)
        assert [(utf8.offset(m.start()), utf8.offset(m.end())) for m in GATE_NAMES.finditer(utf8.data)] == \
            [m.span() for m in reference.finditer(text)], text


def test_offsets_are_the_texts_after_letters_beyond_ascii_and_a_lone_surrogate(stage):
    content = ('# Auteur : Jérôme Müller \ud800 <jane.roe@corp-mail.io>\n'
               'ΚΛΕΙΔΙ = "9fK2mQ7xL4zR8wT1"  # όχι\nDB_PASSWORD = "Tr0ub4dor&3xQ"\n')
    record = redact(stage, content)
    assert [(f["type"], content[f["start"]:f["end"]]) for f in record.pii_findings] == [
        ("EMAIL", "jane.roe@corp-mail.io"), ("PASSWORD", "Tr0ub4dor&3xQ")]
    assert record.content == content.replace("jane.roe@corp-mail.io", "<EMAIL>").replace("Tr0ub4dor&3xQ", "<PASSWORD>")


def test_a_private_key_block_ends_at_an_end_of_its_own_label(stage):
    """A BEGIN never closed, then one closed by an END of another label: neither is a key, and
    the block after them still is."""
    unclosed = f"-----BEGIN EC PRIVATE KEY-----\n-----BEGIN DSA PRIVATE KEY-----\n{KEY_BODY}\n"
    content = (f"{unclosed}-----END RSA PRIVATE KEY-----\nx = 1\n"
               f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n")
    record = redact(stage, content)
    assert [(f["type"], content[f["start"]:f["end"]]) for f in record.pii_findings] == [("KEY", KEY_BODY)]
    assert record.pii_findings[0]["start"] > content.index("x = 1")
