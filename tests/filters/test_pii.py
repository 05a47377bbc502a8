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
    """The known-shape gate is ten patterns instead of one alternation: matches may overlap
    where the alternation's could not, but no match spans a line, so the lines selected
    (and a key block's run to its END line) are the same."""
    import random
    import re

    from filters import pii

    alternation = re.compile(r"-----BEGIN|A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{8}|gh[pousr]_|github_pat_|glpat-|"
                             r"xox[abposr]-|hooks\.slack\.com|[sr]k_(?:live|test)_|AIza|eyJ")
    rng = random.Random(11)
    pieces = ["-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "AKIAABCDEFGH1234",
              "ghp_x", "github_pat_1", "glpat-9", "xoxb-1", "hooks.slack.com", "sk_live_", "rk_test_", "AIzaX",
              "eyJhb", "eyJ-----BEGIN", "ghs_AKIA12345678", "x = 1", "\n", " ", "k_live_", "A"]
    text = "".join(rng.choice(pieces) for _ in range(30_000))
    split = pii._windows(text)
    first_known = 3  # after the e-mail, IPv4 and IPv6 gates
    known = len(pii.GATES) - first_known - 1
    monkeypatch.setattr(pii, "GATES", (*pii.GATES[:first_known], alternation, *pii.GATES[first_known + known:]))
    assert split == pii._windows(text)
    assert len(split) > 1000
