"""A labeled evaluation of secret detection: real files as carriers, secrets of each kind issue 16
found leaking planted in them in realistic places and shapes, look-alikes of the same shapes
beside them. Seeded: the same seed gives the same documents, byte for byte.

Carriers are the kept files of the default sample (ingested and language-tagged as a build
does) and of a few config-heavy packages fetched into the same cache: docker-compose's sdist
(YAML compose files, .env files, Markdown), mkdocs' (HTML templates, YAML) and npm's dotenv
(Markdown full of .env examples). Each secret goes where its kind lives: a JSON password into a
JSON file, an .env line into a compose file's environment list, an openssl command into a
shell script or Markdown, a private key into a file without a code extension, and so on.

A document is one carrier with one secret and one look-alike of the same kind, each inserted
as whole lines at a random line; the labels say on which lines and columns each stands.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from corpus_core.records import SourceSpec

# config-heavy carriers, beyond the default sample (fetched once into the cache, checked by sha256)
EXTRA_CARRIERS = (
    SourceSpec("pypi:docker-compose==1.29.2",
               sha256="4c8cd9d21d237412793d18bd33110049ee9af8dab3fe2c213bbd0733959b09b7"),
    SourceSpec("pypi:mkdocs==1.6.1", sha256="7b432f01d928c084353ab39c57282f29f92136665bdd6abf7c1ec8d822ef86f2"),
    SourceSpec("npm:dotenv@16.4.5", sha256="0ae24e5b77e0346558b024ab2ee87bc4d42e3570147e7af755cf6e8671e96637"),
)
MAX_CARRIER_BYTES = 64_000  # the other tools run at a fraction of a MB/s: keep documents small
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
BASE32 = string.ascii_uppercase + "234567"
# plain words for passwords: none a placeholder (my, test, secret, password, example, ...)
WORDS = ("sunshine", "bluebird", "tangerine", "marigold", "lighthouse", "riverbank", "blackberry", "snowfall",
         "copperfield", "nightingale", "starling", "evergreen", "driftwood", "moonstone", "hazelnut", "pinecone",
         "windmill", "silverado", "cobblestone", "thunderbolt", "wildflower", "sandpiper", "honeycomb", "firefly",
         "lemonade", "raspberry", "avalanche", "kingfisher", "juniper", "saffron", "peppermint", "harbor")


@dataclass
class Carrier:
    path: str
    category: str
    text: str


@dataclass
class Planted:
    """One labeled item of a document: lines first..last (0-based), the value's columns on its
    first and last line (a look-alike covers its lines whole: start and end are None)."""

    doc: int
    kind: str
    first: int
    last: int
    start: int | None = None
    end: int | None = None
    value: str = ""
    block_first: int = 0  # the lines of the whole snippet (a key block's BEGIN and END lines too)
    block_last: int = 0


@dataclass
class Evaluation:
    docs: list[tuple[str, str]]  # (path, content)
    secrets: list[Planted]
    look_alikes: list[Planted]
    carriers: dict[str, int]  # category: how many files


def category(path: str, language: str | None, language_type: str | None) -> str | None:
    name = PurePosixPath(path).name.lower()
    suffix = PurePosixPath(name).suffix
    if name.startswith(".env") or suffix == ".env":
        return "env"
    if language in ("Shell", "Makefile", "Batchfile") or suffix in (".sh", ".bash"):
        return "shell"
    if language == "JSON" or suffix == ".json":
        return "json"
    if language == "YAML" or suffix in (".yml", ".yaml"):
        return "yaml"
    if language in ("Markdown", "reStructuredText") or suffix in (".md", ".rst"):
        return "markdown"
    if language == "HTML" or suffix in (".html", ".htm"):
        return "html"
    if language_type == "programming":
        return "code"
    if language_type in ("prose", "data") or suffix in ("", ".txt", ".cfg", ".ini", ".toml", ".conf"):
        return "text"
    return None


def load_carriers(config_path: Path) -> list[Carrier]:
    """Kept files of the default sample and EXTRA_CARRIERS, by category, at most MAX_CARRIER_BYTES each."""
    from pipeline.config import load_config
    from pipeline.flow import stages_of
    from stages.ingest import Ingest
    from stages.sources import resolve_units

    config = load_config(config_path)
    found, seen = [], set()
    for unit in resolve_units(list(config.sources) + list(EXTRA_CARRIERS)):
        records = Ingest(config.ingest, config.cache_dir).run(unit)
        for spec in (s for s in stages_of("file") if s.name == "language"):
            records = spec.build(config).run(records)
        for record in records:
            text = record.content or ""
            if not record.kept or record.sha256 in seen or not 20 <= len(text.encode()) <= MAX_CARRIER_BYTES:
                continue
            kind = category(record.path, record.language, record.language_type)
            if kind is not None:
                seen.add(record.sha256)
                found.append(Carrier(f"{record.repo}/{record.path}", kind, text))
    return sorted(found, key=lambda c: c.path)


class Makers:
    """Random values of the real formats; nothing real in them."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def chars(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def b64(self, n: int) -> str:
        return base64.b64encode(bytes(self.rng.randrange(256) for _ in range(n))).decode()

    def word_password(self) -> str:
        """Plain lowercase passwords, as people write them in examples and configs."""
        first, second = self.rng.sample(WORDS, 2)
        return self.rng.choice([first, first + second, first + str(self.rng.randrange(10, 9999)),
                                first + "_" + second, first + "-" + str(self.rng.randrange(1, 99))])

    def jwt(self) -> str:
        def part(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
        header = part({"alg": self.rng.choice(["HS256", "RS256"]), "typ": "JWT"})
        claims = part({"sub": str(self.rng.randrange(10**9)), "iat": 1700000000 + self.rng.randrange(10**7),
                       "scope": self.rng.choice(["read", "admin", "ci"])})
        return f"{header}.{claims}.{self.chars(43, ALNUM + '_-')}"

    def pem_body(self, lines: int = 8) -> str:
        """A DER SEQUENCE of the right length, as every PEM key holds (scanners check it), in lines of 64."""
        size = lines * 48 - 4
        der = bytes([0x30, 0x82, size >> 8, size & 0xFF]) + bytes(self.rng.randrange(256) for _ in range(size))
        text = base64.b64encode(der).decode()
        return "\n".join(text[i:i + 64] for i in range(0, len(text), 64))

    def nkey_seed(self) -> str:
        return "S" + self.rng.choice("UAO") + "A" + self.chars(55, BASE32)

    def bcrypt(self) -> str:
        return f"$2{self.rng.choice('aby')}${self.rng.choice(['10', '12'])}$" + self.chars(53, ALNUM + "./")

    def argon2(self) -> str:
        return f"$argon2id$v=19$m=65536,t=3,p=4${self.chars(22, ALNUM + '+/')}${self.chars(43, ALNUM + '+/')}"

    def pbkdf2(self) -> str:  # Django's
        return f"pbkdf2_sha256$600000${self.chars(22)}${self.chars(43, ALNUM + '+/')}="

    def basic(self) -> str:
        user = self.rng.choice(["svc-backup", "deploy", "ci-bot", "grafana", "admin"])
        return base64.b64encode(f"{user}:{self.word_password()}".encode()).decode()


Secret = Callable[[Makers], tuple[str, str]]  # -> (snippet of whole lines, the secret in it)


@dataclass
class Kind:
    name: str
    carriers: tuple[str, ...]
    secrets: list[Secret]
    look_alikes: list[str]


def _kinds() -> list[Kind]:
    def pw(template: str) -> Secret:
        return lambda m: (template.format(v := m.word_password()), v)

    def tok(template: str, n: int = 32, alphabet: str = ALNUM) -> Secret:
        return lambda m: (template.format(v := m.chars(n, alphabet)), v)

    def pem(label: str, indent: str = "") -> Secret:
        def make(m: Makers) -> tuple[str, str]:
            body = m.pem_body()
            block = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
            return "\n".join(indent + line for line in block.split("\n")), body.replace("\n", "\n" + indent)
        return make

    def json_key(m: Makers) -> tuple[str, str]:
        body = m.pem_body().replace("\n", "\\n")
        return (f'  "private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n",', body)

    def pgp(m: Makers) -> tuple[str, str]:
        body = f"Version: GnuPG v2\n\n{m.pem_body(6)}\n={m.chars(4)}"
        return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{body}\n-----END PGP PRIVATE KEY BLOCK-----", body

    def putty(m: Makers) -> tuple[str, str]:
        private = m.pem_body(4)
        return ("PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key-20240101\nPublic-Lines: 2\n"
                f"{m.pem_body(2)}\nPrivate-Lines: 4\n{private}\nPrivate-MAC: {m.chars(40, HEX)}", private)

    return [
        Kind("password_json", ("json",), [
            pw('  "password": "{}",'), pw('  "db_password": "{}",'),
            pw('  "credentials": {{"user": "svc", "password": "{}"}},'), pw('    "adminPassword": "{}"'),
            pw('  "DB_PASSWORD" : "{}",'), pw('  "pass": "{}",'),
        ], ['  "password": "",', '  "password": "<your-password>",', '  "password": "${DB_PASSWORD}",',
            '  "password": "string",', '  "password_min_length": "12",', '  "password": "********",',
            '  "passwordField": "password",', '  "password": null,', '  "password": "Passwort",',
            '  "password": "{{password}}",', '  "password": "$PASSWORD",', '  "password": "YOUR_PASSWORD",']),
        Kind("password_yaml", ("yaml",), [
            pw("password: {}"), pw("  db_password: {}"), pw("  admin_password: '{}'"), pw('    password: "{}"'),
            pw("  spring.datasource.password: {}"), pw("  - password: {}  # staging"), pw("PASSWORD: {}"),
        ], ['  password: "{{ vault_db_password }}"', "  password: !vault |", "  password: ${DB_PASSWORD}",
            "  password: changeme", "  password_file: /run/secrets/db", "  password: ~", "  password: null",
            "  password_hash_algorithm: bcrypt", "  password: <password>", '  password: "%(db_password)s"',
            "  password: ENC[AES256_GCM,data:Tr8=,iv:x=,tag:y=,type:str]", "  passwordPolicy: strict"]),
        Kind("password_env_list", ("yaml", "env"), [
            pw("      - POSTGRES_PASSWORD={}"), pw('      - "MYSQL_ROOT_PASSWORD={}"'), pw("      - DB_PASS={}"),
            pw("DB_PASSWORD={}"), pw("export REDIS_PASSWORD={}"), pw("      MYSQL_PASSWORD: {}"),
            pw("      - PGPASSWORD={}"),
        ], ["      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD}", "      - POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
            "      - DB_PASSWORD", '      - "DB_PASSWORD=${DB_PASSWORD:-}"', "DB_PASSWORD=", "PASSWORD_MIN_LENGTH=12",
            "DB_PASSWORD=changeme", "      - PASSWORD_RESET_TIMEOUT=3600",
            "      - API_TOKEN_URL=https://auth.acme.io/token"]),
        Kind("password_markdown", ("markdown",), [
            pw("    docker run -d -e POSTGRES_PASSWORD={} -p 5432:5432 postgres:16"),
            pw('    {{"user": "admin", "password": "{}"}}'), pw("    DB_PASSWORD={}"), pw("    export DB_PASSWORD={}"),
            pw("Log in as `admin`, then set `ADMIN_PASSWORD={}` before going to production."),
            pw("    mysql -h 127.0.0.1 -u root -p{} app"), pw("| `DB_PASSWORD` | `{}` |"),
        ], ["    docker run -d -e POSTGRES_PASSWORD=<password> postgres:16", "Set the password: see below.",
            "    export DB_PASSWORD=$(cat /run/secrets/db)", "| password | string | The user's password |",
            "    DB_PASSWORD=your-password-here", "The `password` field is required.",
            "| `DB_PASSWORD` | `string` | The database password |"]),
        Kind("password_html", ("html",), [
            pw('<input type="password" name="pw" value="{}">'),
            pw("<pre>{{&quot;username&quot;: &quot;admin&quot;, &quot;password&quot;: &quot;{}&quot;}}</pre>"),
            pw("<code>DB_PASSWORD={}</code>"), pw("<li><code>password: {}</code></li>"),
            pw('<input value="{}" type="password" name="pw">'), pw("<td>DB_PASSWORD</td><td>{}</td>"),
        ], ['<input type="password" name="password" placeholder="Password">', '<label for="password">Password</label>',
            '<input type="password" value="">', "<code>DB_PASSWORD=&lt;password&gt;</code>",
            '<a href="/password/reset">Forgot password?</a>',
            '<input type="password" name="password" value="{{ form.password.value }}">',
            "<td>DB_PASSWORD</td><td>required</td>"]),
        Kind("password_midline", ("shell", "code"), [
            pw("env DB_PASSWORD={} ./server --port 8080"), pw("docker run -d -e MYSQL_PASSWORD={} mysql:8"),
            pw('dsn = "host=db.internal user=app password={} dbname=app"'), pw("ssh deploy@host 'PGPASSWORD={} psql'"),
            pw("PGPASSWORD={} pg_dump -h db -U app app > dump.sql"), pw('    cmd = f"mysqladmin -uroot -p{} status"'),
        ], ["    conn = connect(user=user, password=password, host=host)", "env DB_PASSWORD=$DB_PASSWORD ./server",
            "docker run -d -e MYSQL_PASSWORD mysql:8", "    password = credentials", "    password = get_password()",
            "    if password_confirm != password:", "    kwargs = dict(user=self.user, password=self.password)",
            'PGPASSWORD="$DB_PASS" psql -h db -U app']),
        Kind("openssl_passin", ("shell", "markdown"), [
            pw("openssl rsa -in server.key -passin pass:{} -out server.pem"),
            pw("openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.p12 -passout pass:{}"),
            pw("openssl enc -aes-256-cbc -salt -pass pass:{} -in backup.tar -out backup.enc"),
            pw("openssl genrsa -aes256 -passout 'pass:{}' -out ca.key 4096"),
            pw('    subprocess.run(["openssl", "rsa", "-in", key, "-passin", "pass:{}"])'),
        ], ["openssl rsa -in server.key -passin env:PASSPHRASE -out server.pem",
            "openssl rsa -in server.key -passin file:pass.txt -out server.pem",
            'openssl pkcs12 -export -in cert.pem -out cert.p12 -passout "pass:$P12_PASS"',
            "openssl rsa -in server.key -passin stdin -out server.pem",
            'openssl rsa -in server.key -passin pass:"$PASSPHRASE" -out server.pem']),
        Kind("token_escaped_json", ("code", "shell"), [
            tok('curl -X POST -H "Content-Type: application/json" -d "{{\\"token\\": \\"{}\\"}}" https://api.io/v1'),
            tok('    headers = json.loads("{{\\"X-Api-Key\\": \\"{}\\"}}")', 32, HEX),
            tok('  const HEADERS = "{{\\"X-Auth-Token\\":\\"{}\\",\\"Accept\\":\\"*/*\\"}}";', 40),
            tok("    payload = '{{\"api_key\": \"{}\", \"q\": \"x\"}}'", 32),
            tok('    "body": "{{\\\\\\"access_token\\\\\\": \\\\\\"{}\\\\\\"}}"', 40),
        ], ['curl -H "{\\"X-Api-Key\\": \\"<your-api-key>\\"}" https://api.io/v1',
            'curl -H "{\\"X-Api-Key\\": \\"${API_KEY}\\"}" https://api.io/v1',
            '    headers = json.loads("{\\"Content-Type\\": \\"application/json\\"}")',
            '  const HEADERS = "{\\"X-Request-Id\\":\\"123e4567-e89b-12d3-a456-426614174000\\"}";',
            '    body = "{\\"token\\": \\"{{token}}\\"}"']),
        Kind("basic_auth", ("markdown", "code", "shell"), [
            lambda m: (f"    Authorization: Basic {(v := m.basic())}", v),
            lambda m: (f'    headers = {{"Authorization": "Basic {(v := m.basic())}"}}', v),
            lambda m: (f"curl -H 'Authorization: Basic {(v := m.basic())}' https://api.acme-corp.io/v1", v),
            lambda m: (f"    auth: 'Basic {(v := m.basic())}',", v),
            lambda m: (f"proxy_set_header Authorization \"Basic {(v := m.basic())}\";", v),
        ], ["    Authorization: Basic <base64(user:password)>",
            '    headers["Authorization"] = "Basic " + btoa(user + ":" + pass);',
            '    WWW-Authenticate: Basic realm="Restricted"', "    Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "Use basic authentication with the username and password of the account.",
            "    Authorization: Basic base64encodedcredentials"]),
        Kind("oauth", ("markdown", "code"), [
            tok('Authorization: OAuth oauth_consumer_key="{}", oauth_signature_method="HMAC-SHA1"', 22),
            tok('    OAuth oauth_nonce="{}", oauth_timestamp="1318622958", oauth_version="1.0"', 42),
            tok("CONSUMER_SECRET = '{}'", 43), tok("    consumer_key: {}", 25),
            tok('    params["oauth_token_secret"] = "{}"', 40),
            tok("    consumerSecret: '{}',", 43), tok("OAUTH_CONSUMER_KEY={}", 25),
        ], ['    oauth_signature_method="HMAC-SHA1", oauth_version="1.0"', '    oauth_timestamp="1318622958"',
            '    oauth_callback="https://client.example.net/cb"', "    consumer_key: ${TWITTER_CONSUMER_KEY}",
            "    b'WWW-Authenticate: Digest nonce=\"6bf5d6e4da1ce66918800195d6b9130d\"'",
            '<script nonce="r4nd0mN0nc3">', '    oauth_token="{{ oauth_token }}"']),
        Kind("hex_token", ("code",), [
            tok("// auth token: {}", 32, HEX), tok("# API token {}", 40, HEX),
            tok('    client.SetAuthToken("{}")', 32, HEX), tok("    api.set_access_token('{}')", 40, HEX),
            tok('    c := NewClient("https://api.acme.io", "{}")', 40, HEX), tok("/* x-auth-token: {} */", 32, HEX),
        ], ["// sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "# commit 3f786850e387550fdab836ed7e6dc881de23001b", "    client.SetAuthToken(token)",
            '    tok := GetAuthToken("default")', "# md5 5d41402abc4b2a76b9719d911017c592",
            '    tokens = tokenizer.tokenize("hello world, this is text")',
            'EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"',
            "    git_rev: 3f786850e387550fdab836ed7e6dc881de23001b"]),
        Kind("nkey_seed", ("text", "yaml", "code"), [
            lambda m: (f"seed: {(v := m.nkey_seed())}", v),
            lambda m: (f'    nkey_seed = "{(v := m.nkey_seed())}"', v),
            lambda m: (f"-----BEGIN USER NKEY SEED-----\n{(v := m.nkey_seed())}\n------END USER NKEY SEED------", v),
        ], ["    nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4",
            "  account: ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA",
            "  # seeds start with SU, SA or SO: never commit one"]),
        Kind("password_hash", ("yaml", "json", "text", "code"), [
            lambda m: (f'  password_hash: "{(v := m.bcrypt())}"', v),
            lambda m: (f"admin:{(v := m.bcrypt())}", v),
            lambda m: (f"INSERT INTO users (name, hash) VALUES ('admin', '{(v := m.bcrypt())}');", v),
            lambda m: (f'    "token_hash": "{(v := m.bcrypt())}",', v),
            lambda m: (f"  hash: {(v := m.argon2())}", v), lambda m: (f'password = "{(v := m.pbkdf2())}"', v),
        ], ['PREFIX = "$2b$"', "    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=12))",
            '    fmt = "$2b$%02d$"',
            '  "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",']),
        Kind("jwt_config", ("yaml", "json", "env", "text"), [
            lambda m: (f"    token: {(v := m.jwt())}", v), lambda m: (f'  "id_token": "{(v := m.jwt())}",', v),
            lambda m: (f"JWT_TOKEN={(v := m.jwt())}", v),
            lambda m: (f"callback_url: https://app.io/cb?auth=Bearer%20{(v := m.jwt())}", v),
            lambda m: (f"    Authorization: Bearer {(v := m.jwt())}", v), lambda m: (f"jwt = '{(v := m.jwt())}'", v),
        ], ['    header: "eyJhbGciOiJIUzI1NiJ9"', "    token: ${JWT_TOKEN}", '  "alg": "HS256",',
            "    jwt_secret_env: JWT_SECRET",
            # jwt.io's example token, in countless READMEs
            "    token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
            "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"]),
        Kind("private_key_nocode", ("text", "yaml", "json", "markdown"), [
            pem("RSA PRIVATE KEY"), pem("EC PRIVATE KEY", "    "), pem("OPENSSH PRIVATE KEY"), json_key, pgp, putty,
            pem("ENCRYPTED PRIVATE KEY"), pem("DSA PRIVATE KEY", "      "),
        ], ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
            "-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n"
            "-----END CERTIFICATE-----",
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            '    key_file: "/etc/ssl/private/server.key"',
            "-----BEGIN PRIVATE KEY-----\n<your private key here>\n-----END PRIVATE KEY-----"]),
        # the shapes the stage knew before issue 16, kept so that none regresses
        Kind("known_shapes", ("code",), [
            tok('aws_access_key_id = "AKIA{}"', 16, string.ascii_uppercase + string.digits),
            tok("AWS_SECRET_ACCESS_KEY={}", 40, ALNUM + "/+"),
            tok('    headers = {{"Authorization": "token ghp_{}"}}', 36),
            tok("GITLAB_TOKEN = 'glpat-{}'", 20), tok('stripe.api_key = "sk_live_{}"', 24),
            tok('const MAPS_KEY = "AIza{}";', 35),
            tok('DATABASE_URL = "postgres://app:{}@db.prod.acme-corp.io/app"', 12),
            tok('SECRET_KEY = "{}"', 32, HEX), tok("  api_token: {}", 32),
        ], ['aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"', "password = get_password()", 'token = "${GITHUB_TOKEN}"',
            'api_key = os.environ["API_KEY"]', 'id = "123e4567-e89b-12d3-a456-426614174000"',
            "url = 'postgres://user:password@localhost/db'", 'secret = "xxxxxxxxxxxxxxxx"']),
    ]


KINDS = _kinds()


def _held_out_kinds() -> list[Kind]:
    """Shapes and look-alikes written after the detectors, and run once as held out (see bench/pii.py
    for that run's figures and what it changed): the forms the detectors were not first fitted to."""
    def pw(template: str) -> Secret:
        return lambda m: (template.format(v := m.word_password()), v)

    def tok(template: str, n: int = 32, alphabet: str = ALNUM) -> Secret:
        return lambda m: (template.format(v := m.chars(n, alphabet)), v)

    def key_in(template: str) -> Secret:
        def make(m: Makers) -> tuple[str, str]:
            body = m.pem_body()
            return template.format(body), body
        return make

    return [
        Kind("password_json", ("json",), [pw('{{"auth":{{"password":"{}"}}}}'), pw('  "Password": "{}",'),
                                          pw('  "root_password":"{}",')],
             ['  "password": "******",', '  "password": "{{ .Values.password }}",']),
        Kind("password_yaml", ("yaml",), [pw("db:\n  password: {}"), pw('    PASSWORD: "{}"'), pw("  smtp_pass: {}")],
             ["  password: $(DB_PASSWORD)", "  passwordSecretRef: db-creds"]),
        Kind("password_env_list", ("yaml",), [pw("      - SMTP_PASSWORD={}"), pw("      - 'POSTGRES_PASSWORD={}'"),
                                              pw("  - name: DB_PASSWORD\n    value: {}")],
             ["  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db, key: password}",
              "      - SMTP_PASSWORD=${SMTP_PASSWORD:?required}"]),
        Kind("password_markdown", ("markdown",), [pw("    $ export API_PASSWORD={}"),
                                                  pw("Run `PASSWORD={} npm start`."), pw("* **Password:** {}")],
             ["* **Password:** your password", "    $ export API_PASSWORD=<password>"]),
        Kind("password_html", ("html",), [pw("<input type='password' value='{}'>"),
                                          pw('<input name="password" type="password" value="{}" />')],
             ["<input type='password' value=''>", '<input type="password" value="{{ password }}">']),
        Kind("password_midline", ("shell", "markdown"), [pw("make deploy DB_PASSWORD={} ENV=prod"),
                                                         pw("heroku config:set ADMIN_PASSWORD={} -a app")],
             ["heroku config:set ADMIN_PASSWORD=$ADMIN_PASSWORD -a app", "make deploy DB_PASSWORD= ENV=prod"]),
        Kind("openssl_passin", ("shell", "markdown"), [pw("openssl req -new -key k.pem -passin pass:{} -out r.csr"),
                                                       pw("openssl pkcs12 -in a.p12 -nodes -password pass:{}")],
             ["openssl req -new -key k.pem -passin pass: -out r.csr",
              "openssl pkcs12 -in a.p12 -nodes -password env:P"]),
        Kind("token_escaped_json", ("code",), [tok('    body = "{{\\"apiKey\\":\\"{}\\"}}"'),
                                               tok("    raw = '{{\\\\\"secret\\\\\": \\\\\"{}\\\\\"}}'", 40)],
             ['    body = "{\\"apiKey\\":\\"\\"}"', '    body = "{\\"apiKey\\":\\"%s\\"}" % key']),
        Kind("basic_auth", ("code", "markdown"), [lambda m: (f'    "authorization": "basic {(v := m.basic())}",', v),
                                                  lambda m: (f"https://hooks.acme.io/in?Authorization=Basic%20"
                                                             f"{(v := m.basic())}", v)],
             ['    "authorization": "basic"', "    # basic auth: user:password, base64"]),
        Kind("oauth", ("code", "json"), [tok('oauth_consumer_secret = "{}"', 43), tok('  "consumer_key": "{}",', 25),
                                         tok("    oauthNonce: '{}',", 32)],
             ['oauth_consumer_secret = os.environ["CONSUMER_SECRET"]', '  "consumer_key": "",']),
        Kind("hex_token", ("code",), [tok("// apiKey = {}", 40, HEX), tok("  token: {}  # production", 32, HEX),
                                      tok('    client.SetToken(ctx, "{}")', 40, HEX)],
             ["// apiKey = process.env.API_KEY", '    client.SetToken(ctx, token)']),
        Kind("nkey_seed", ("shell", "json"), [lambda m: (f"export NKEY_SEED={(v := m.nkey_seed())}", v),
                                              lambda m: (f'  "seed": "{(v := m.nkey_seed())}",', v)],
             ['  "seed": "<nkey-seed>",', "export NKEY_SEED=$(cat user.nk)"]),
        Kind("password_hash", ("code", "text"), [lambda m: (f"    'password' => '{(v := m.bcrypt())}',", v),
                                                 lambda m: (f"root:$6$rounds=5000${m.chars(16, ALNUM + './')}$"
                                                            f"{(v := m.chars(86, ALNUM + './'))}:19000:0:99999:7:::",
                                                            v)],
             ["    'password' => Hash::make($password),", "root:*:19000:0:99999:7:::"]),
        Kind("jwt_config", ("markdown", "code"), [lambda m: (f"https://app.io/cb#access_token={(v := m.jwt())}&x=1", v),
                                                  lambda m: (f'    "Authorization": "JWT {(v := m.jwt())}",', v)],
             ["https://app.io/cb#access_token=<token>&x=1", '    "Authorization": "JWT " + token,']),
        Kind("private_key_nocode", ("markdown", "text"), [
            key_in("```\n-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n```"),
            key_in("<key>-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----</key>"),
            key_in("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                   "DEK-Info: AES-128-CBC,3F17A2B4C5D6E7F8\n\n{}\n-----END RSA PRIVATE KEY-----")],
            ["<key>${PRIVATE_KEY}</key>", "    -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY-----"]),
        Kind("known_shapes", ("yaml",), [tok("slack_bot_token: xoxb-1234567890-{}", 24),
                                         tok("  GITHUB_TOKEN: ghp_{}", 36)],
             ['  GITHUB_TOKEN: "{{ secrets.GITHUB_TOKEN }}"', "slack_bot_token: ${SLACK_BOT_TOKEN}"]),
    ]


HELD_OUT_KINDS = _held_out_kinds()


def build(carriers: list[Carrier], per_kind: int, seed: int, kinds: list[Kind] = KINDS) -> Evaluation:
    """`per_kind` documents of each kind: a carrier of one of its categories with one secret and
    one look-alike of that kind (the secret shapes and look-alikes taken in turn)."""
    rng = random.Random(seed)
    makers = Makers(rng)
    by_category: dict[str, list[Carrier]] = {}
    for carrier in carriers:
        by_category.setdefault(carrier.category, []).append(carrier)
    evaluation = Evaluation([], [], [], {c: len(v) for c, v in sorted(by_category.items())})
    for kind in kinds:
        pools = [by_category[c] for c in kind.carriers if by_category.get(c)]
        if not pools:
            raise ValueError(f"no carrier of {kind.carriers} for {kind.name}")
        for i in range(per_kind):
            carrier = rng.choice(rng.choice(pools))
            snippet, value = kind.secrets[i % len(kind.secrets)](makers)
            look_alike = kind.look_alikes[i % len(kind.look_alikes)]
            lines = carrier.text.split("\n")
            at, other = sorted(rng.sample(range(len(lines) + 1), 2))
            secret_lines, look_lines = snippet.split("\n"), look_alike.split("\n")
            content = "\n".join(lines[:at] + secret_lines + lines[at:other] + look_lines + lines[other:])
            doc = len(evaluation.docs)
            evaluation.docs.append((f"{doc:04d}/{PurePosixPath(carrier.path).name}", content))
            index = snippet.index(value)
            first = at + snippet.count("\n", 0, index)
            last = at + snippet.count("\n", 0, index + len(value))
            start = index - (snippet.rfind("\n", 0, index) + 1)
            end = index + len(value) - (snippet.rfind("\n", 0, index + len(value)) + 1)
            evaluation.secrets.append(Planted(doc, kind.name, first, last, start, end, value,
                                              at, at + len(secret_lines) - 1))
            look_first, look_last = other + len(secret_lines), other + len(secret_lines) + len(look_lines) - 1
            evaluation.look_alikes.append(Planted(doc, kind.name, look_first, look_last,
                                                  block_first=look_first, block_last=look_last))
    return evaluation


# Lines of the real files with a secret-like name followed by = or : (`token = ...`,
# `password: ...`), which public packages hold as code, not as secrets; except these, read and
# judged to be literal credentials, which issue 16 counts as secrets, not look-alikes: a test
# database's password (psycopg2's tests), passwords in documentation examples (PEP 249 in
# psycopg2's docs, an example login in a Markdown file).
HARVEST = re.compile(r"(?i)(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|passw|pwd"
                     r"|pass\b)[\w.-]{0,64}[\"']?[ \t]*[:=]")
REAL_CREDENTIALS = ("password='psycopg2'", "password='234$'", "'password': 's33kred'")


def harvested_look_alikes(carriers: list[Carrier], count: int, seed: int) -> dict[str, list[int]]:
    """Up to `count` real lines of the carriers that look like a secret's assignment, left in
    place: {carrier path: [line numbers]}."""
    found = set()
    for carrier in carriers:
        for number, line in enumerate(carrier.text.split("\n")):
            if 0 < len(line) < 300 and HARVEST.search(line) and not any(c in line for c in REAL_CREDENTIALS):
                found.add((carrier.path, number))
    picked: dict[str, list[int]] = {}
    for path, number in random.Random(seed).sample(sorted(found), min(count, len(found))):
        picked.setdefault(path, []).append(number)
    return {path: sorted(numbers) for path, numbers in sorted(picked.items())}
