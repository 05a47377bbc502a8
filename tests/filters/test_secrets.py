"""Secrets of every kind issue 16 found leaking (plain passwords in JSON, YAML, .env lists,
Markdown and HTML; openssl's pass:; tokens in escaped JSON headers; Basic authorization;
OAuth keys and nonces; hex auth tokens in comments and calls; NKEY seeds; password hashes;
JWTs in config files; private keys outside code), each redacted to its placeholder and nothing
else, next to the look-alikes of the same shape that must stay byte-identical."""

from __future__ import annotations

import pytest

from corpus_core.records import FileRecord
from filters.pii import PiiConfig, PiiRedactor

# made up for these tests, in the real formats: none is a live secret
HEX_TOKEN = "4c9184f37cff01bcdc32dc486ec36961"
NKEY_SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
BCRYPT = "$2b$12$KIXQJq8gS1mTz2b7yZ3r5eO9xVw4Lq6n8pT1dR3sH5uY7iB9oC0aG"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQxMjM0$Kq8vNw3ZtR5xLm2Yb7Hc1Jd6G"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
       ".Kq8vNw3ZtR5xLm2Yb7Hc1Jd6Gf0Ae5Rk9Wm2Qz8Lx7V")
KEY_LINES = ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
             "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu")
ESCAPED_KEY = "\\n".join(KEY_LINES)  # as a JSON string holds it: "\n" escaped
PGP_BODY = ("Version: GnuPG v1 (GNU/Linux)\n\nlQOYBFRp1e0BCADNhE7e5jEj5c2V3Xl7kS8Qf7C8JxK3tV9nXl3l8m4y2f+gO8Z0\n"
            "bX1c2d3e4f5g6h7i8j9k0l1m2n3o4p5q6r7s8t9u0v1w2x3y4z5A6B7C8D9E0F1G\n=wXyZ")
PUTTY_BODY = ("AAABAHx3K9mQ2pL7wR4tY8vN1bC5xZ0jH6gF3sD9aK2lM7nP4qR1sT8uV5wX2yZ6cA\n"
              "bB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5")

# (kind, file name, content, the secret, its placeholder)
SECRETS = [
    ("password_json", "config.json", '{"username": "admin", "password": "sunshine"}\n', "sunshine", "<PASSWORD>"),
    ("password_yaml", "values.yaml", "database:\n  host: db\n  db_password: bluebird\n", "bluebird", "<PASSWORD>"),
    ("password_env_list", "docker-compose.yml", "    environment:\n      - POSTGRES_PASSWORD=bluebird\n",
     "bluebird", "<PASSWORD>"),
    ("password_env_list", "docker-compose.yml", '    environment:\n      - "MYSQL_ROOT_PASSWORD=tangerine"\n',
     "tangerine", "<PASSWORD>"),
    ("password_env_list", "deployment.yaml", "        env:\n        - name: DB_PASSWORD\n          value: juniper-42\n",
     "juniper-42", "<PASSWORD>"),
    ("password_markdown", "README.md", "Run `docker run -e DB_PASSWORD=tangerine -d postgres` first.\n",
     "tangerine", "<PASSWORD>"),
    ("password_markdown", "README.md", '```json\n{"db": {"password": "marigold"}}\n```\n', "marigold", "<PASSWORD>"),
    ("password_html", "login.html", '<input type="password" name="pw" value="marigold">\n', "marigold",
     "<PASSWORD>"),
    ("password_html", "api.html", "<pre>{&quot;password&quot;: &quot;marigold&quot;}</pre>\n", "marigold",
     "<PASSWORD>"),
    ("password_inline", "run.sh", "env DB_PASSWORD=tangerine ./server --port 80\n", "tangerine", "<PASSWORD>"),
    ("password_xml", "settings.xml", "  <password>tangerine</password>\n", "tangerine", "<PASSWORD>"),
    ("password_table", "CONFIG.md", "| `DB_PASSWORD` | `wildflower-9` |\n", "wildflower-9", "<PASSWORD>"),
    ("password_table", "config.html", "<tr><td>DB_PASSWORD</td><td>firefly</td></tr>\n", "firefly", "<PASSWORD>"),
    ("password_conninfo", "db.py", 'dsn = "host=db.internal user=app password=pinecone_sunshine dbname=app"\n',
     "pinecone_sunshine", "<PASSWORD>"),
    ("password_setter", "Db.java", '    ds.setPassword("marigold7");\n', "marigold7", "<PASSWORD>"),
    ("openssl_passin", "make-certs.sh", "openssl rsa -in key.pem -passin pass:marigold -out plain.pem\n", "marigold",
     "<PASSWORD>"),
    ("openssl_passin", "certs.py", '    subprocess.run(["openssl", "rsa", "-in", key, "-passin", "pass:marigold"])\n',
     "marigold", "<PASSWORD>"),
    ("cli_password", "deploy.sh", "sshpass -p tangerine ssh deploy@host\n", "tangerine", "<PASSWORD>"),
    ("cli_password", "backup.sh", "mysqldump -h db.internal -u root -pTangerine42 appdb > x.sql\n", "Tangerine42",
     "<PASSWORD>"),
    ("cli_password", "docs.md", "curl -u deploy:Tangerine42 https://api.acme-corp.io/v1/items\n", "Tangerine42",
     "<PASSWORD>"),
    ("cli_password", "docs.md", "./tool --password tangerine --host db\n", "tangerine", "<PASSWORD>"),
    ("token_escaped_json", "client.sh", 'curl -H "{\\"X-Api-Key\\": \\"k3Yz8Qm2Lp4Wt9Rv3NcXa7Bd\\"}" https://x.io\n',
     "k3Yz8Qm2Lp4Wt9Rv3NcXa7Bd", "<KEY>"),
    ("token_escaped_json", "client.py", 'body = "{\\"token\\":\\"8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e\\"}"\n',
     "8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e", "<KEY>"),
    ("token_query", "client.js", "fetch('https://api.acme.io/v1?api_key=k3Yz8Qm2Lp4Wt9Rv3NcX&format=json')\n",
     "k3Yz8Qm2Lp4Wt9Rv3NcX", "<KEY>"),
    ("bearer", "client.py", 'headers = {"Authorization": "Bearer 8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e"}\n',
     "8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e", "<KEY>"),
    ("basic_auth", "api.http", "GET /v1/items\nAuthorization: Basic c3ZjLWJhY2t1cDpUcjB1YjRkb3Iz\n",
     "c3ZjLWJhY2t1cDpUcjB1YjRkb3Iz", "<PASSWORD>"),
    ("basic_auth", "hooks.md", "https://hooks.acme.io/in?Authorization=Basic%20c3ZjLWJhY2t1cDpUcjB1YjRkb3Iz\n",
     "c3ZjLWJhY2t1cDpUcjB1YjRkb3Iz", "<PASSWORD>"),
    ("oauth", "twitter.md", 'Authorization: OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", oauth_version="1.0"\n',
     "xvz1evFS4wEEPTGEFPHBog", "<KEY>"),
    ("oauth", "twitter.md", 'OAuth oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", oauth_version="1.0"\n',
     "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", "<KEY>"),
    ("oauth", "client.py", '    params["oauth_token_secret"] = "QIn0yltui7hW16Qs7XINlWZMYR4PZ5aW2r4J538J"\n',
     "QIn0yltui7hW16Qs7XINlWZMYR4PZ5aW2r4J538J", "<KEY>"),
    ("oauth", "settings.py", "CONSUMER_SECRET = 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw'\n",
     "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "<KEY>"),
    ("hex_token", "main.go", f"// auth token: {HEX_TOKEN}\n", HEX_TOKEN, "<KEY>"),
    ("hex_token", "main.go", f'\tclient.SetAuthToken("{HEX_TOKEN}")\n', HEX_TOKEN, "<KEY>"),
    ("hex_token", "notes.txt", f"# token {HEX_TOKEN}\n", HEX_TOKEN, "<KEY>"),
    ("nkey_seed", "user.creds", f"-----BEGIN USER NKEY SEED-----\n{NKEY_SEED}\n------END USER NKEY SEED------\n",
     NKEY_SEED, "<KEY>"),
    ("password_hash", "users.yml", f'admin:\n  password_hash: "{BCRYPT}"\n', BCRYPT, "<KEY>"),
    ("password_hash", "users.yml", f"  hash: {ARGON2}\n", ARGON2, "<KEY>"),
    ("password_hash", ".htpasswd", "deploy:$apr1$ignored\nadmin:" + BCRYPT + "\n", BCRYPT, "<KEY>"),
    ("jwt_config", "kubeconfig.yaml", f"users:\n- name: ci\n  user:\n    token: {JWT}\n", JWT, "<KEY>"),
    ("jwt_config", "app.env", f"CALLBACK=https://x.io/cb?auth=Bearer%20{JWT}\n", JWT, "<KEY>"),
    ("private_key", "service-account.json",
     f'{{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n{ESCAPED_KEY}\\n'
     '-----END PRIVATE KEY-----\\n"}\n', ESCAPED_KEY, "<KEY>"),
    ("private_key", "key.asc",
     f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{PGP_BODY}\n-----END PGP PRIVATE KEY BLOCK-----\n", PGP_BODY, "<KEY>"),
    ("private_key", "id.ppk", "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPublic-Lines: 1\nAAAAB3NzaC1yc2E\n"
     f"Private-Lines: 2\n{PUTTY_BODY}\nPrivate-MAC: 8a6c1d2e3f4a\n", PUTTY_BODY, "<KEY>"),
]

# (kind, file name, content): the look-alikes of each shape, left as they are
LOOK_ALIKES = [
    ("password_json", "config.json", '{"username": "admin", "password": ""}\n'),
    ("password_json", "config.json", '{"password": "<your-password>", "token": "${API_TOKEN}"}\n'),
    ("password_json", "schema.json", '{"password": "string", "password_min_length": "12"}\n'),
    ("password_json", "de.json", '{"password": "Passwort", "errors.password": "required"}\n'),
    ("password_yaml", "values.yaml", '  password: "{{ vault_db_password }}"\n  password: !vault |\n'),
    ("password_yaml", "models.py", "class Login:\n    password: str\n    password: Optional[str] = None\n"),
    ("password_yaml", "values.yaml", "  password_hash: sha256\n  password: changeme\n"),
    ("password_env_list", "docker-compose.yml", "      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD}\n"),
    ("password_env_list", "docker-compose.yml", "      - POSTGRES_PASSWORD_FILE=/run/secrets/db_password\n"),
    ("password_env_list", "docker-compose.yml", "      - SMTP_PASSWORD=${SMTP_PASSWORD:?required}\n"),
    ("password_env_list", "deployment.yaml",
     "        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n"),
    ("password_inline", "Makefile", "\tmake deploy DB_PASSWORD= ENV=prod\n"),
    ("password_markdown", "README.md", "Run `docker run -e POSTGRES_PASSWORD=<password> -d postgres` first.\n"),
    ("password_table", "CONFIG.md", "| `DB_PASSWORD` | `string` | The database password |\n"),
    ("password_table", "config.html", "<tr><td>DB_PASSWORD</td><td>required</td></tr>\n"),
    ("password_conninfo", "extensions.rst", "    >>> make_dsn('dbname=foo host=example.com', password=\"s3cr3t\")\n"),
    ("placeholder", "app.manifest", '<assemblyIdentity name="VC90.CRT" publicKeyToken="1fc8b3b9a1e18e3b"/>\n'),
    ("password_html", "login.html", '<input type="password" name="password" placeholder="Password">\n'),
    ("password_inline", "db.py", "    conn = connect(user=user, password=password, host=host)\n"),
    ("password_inline", "db.py", "    password = credentials\n    password = user_pass2\n"
                                 "    password = get_password()\n"),
    ("password_inline", "forms.py", '    bypass_mode = "always"\n    token_type = "bearer"\n'),
    ("openssl_passin", "make-certs.sh", "openssl rsa -in key.pem -passin env:PASSPHRASE -passout file:pass.txt\n"),
    ("openssl_passin", "make-certs.sh", "openssl rsa -in key.pem -passout pass:$PASS\n"),
    ("openssl_passin", "make-certs.sh", "openssl pkcs12 -in a.p12 -nodes -password env:P12_PASSWORD\n"),
    ("cli_password", "docs.md", "./tool --password PASSWORD --token TOKEN\ngit push -u origin main\n"),
    ("cli_password", "run.sh", "docker run -u 1000:1000 image\nmysql -u root -p appdb\n"),
    ("token_escaped_json", "client.sh", 'curl -H "{\\"X-Api-Key\\": \\"<your-api-key>\\"}" https://x.io\n'),
    ("token_escaped_json", "client.sh", 'curl -H "{\\"X-Api-Key\\": \\"${API_KEY}\\"}" https://x.io\n'),
    ("basic_auth", "api.http", "Authorization: Basic <base64-credentials>\nWWW-Authenticate: Basic realm=\"api\"\n"),
    ("basic_auth", "auth.js", 'headers["Authorization"] = "Basic " + btoa(user + ":" + pass);\n'),
    ("basic_auth", "api.md", "Authorization: Basic dXNlcjpwYXNzd29yZA==\n"),  # user:password
    ("oauth", "twitter.md", 'oauth_signature_method="HMAC-SHA1", oauth_timestamp="1318622958", oauth_version="1.0"\n'),
    ("oauth", "test_auth.py", "b'WWW-Authenticate: Digest nonce=\"6bf5d6e4da1ce66918800195d6b9130d\"'\n"),
    ("hex_token", "main.go", "// sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"),
    ("hex_token", "main.go", "\tclient.SetAuthToken(token)\n\ttok := GetAuthToken(\"default\")\n"),
    ("hex_token", "lexer.py", 'tokens = tokenizer.tokenize("hello world, this is text")\n'),
    ("hex_token", "NOTES", "commit 3f786850e387550fdab836ed7e6dc881de23001b\n"),
    ("nkey_seed", "server.conf",  # a public key (U...): no secret
     "authorization: { users: [ { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 } ] }\n"),
    ("password_hash", "hashing.py", 'PREFIX = "$2b$"\nhashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=12))\n'),
    ("jwt_config", "config.yaml", 'header: "eyJhbGciOiJIUzI1NiJ9"\n'),
    ("jwt_config", "README.md",  # jwt.io's example token
     "token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ijox"
     "NTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n"),
    ("private_key", "pub.pem",
     "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
     "-----END PUBLIC KEY-----\n"),
    ("private_key", "keys.py",
     'BEGIN = "-----BEGIN RSA PRIVATE KEY-----\\n"\nEND = "-----END RSA PRIVATE KEY-----\\n"\n'),
    ("placeholder", "uuid.py", 'api_key = "123e4567-e89b-12d3-a456-426614174000"\n'),
    ("placeholder", "package-lock.json",
     '"integrity": "sha512-Vx7bYqZ3kLm9PzT2wR8nQ4hJ6cF1dS5aG0eU3iO7pK2lM9xN8vB4cZ1yT6rE5wQ=="\n'),
]


@pytest.fixture(scope="module")
def stage():
    return PiiRedactor(PiiConfig())


def redact(stage, path: str, content: str) -> FileRecord:
    record = FileRecord("o/r", path, len(content), content=content)
    stage.process(record)
    return record


@pytest.mark.parametrize("kind, path, content, secret, placeholder", SECRETS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SECRETS)])
def test_each_kind_of_secret_is_replaced_by_its_placeholder_and_nothing_else(stage, kind, path, content, secret,
                                                                             placeholder):
    assert content.count(secret) == 1
    record = redact(stage, path, content)
    assert record.content == content.replace(secret, placeholder)
    assert [(f["type"], content[f["start"]:f["end"]]) for f in record.pii_findings] == [(placeholder[1:-1], secret)]


@pytest.mark.parametrize("kind, path, content", LOOK_ALIKES, ids=[f"{s[0]}-{i}" for i, s in enumerate(LOOK_ALIKES)])
def test_each_look_alike_is_left_byte_identical(stage, kind, path, content):
    record = redact(stage, path, content)
    assert record.content == content and record.pii_findings == []


def test_redacted_output_holds_nothing_to_find_again(stage):
    """`corpus audit` re-runs the detectors on the shards: a placeholder must not look like a secret."""
    for _, path, content, _, _ in SECRETS:
        once = redact(stage, path, content).content
        again = redact(stage, path, once)
        assert again.pii_findings == [] and again.content == once


def test_a_password_name_is_one_whose_last_words_name_the_password():
    from filters.pii import is_password_name

    assert all(map(is_password_name, ["password", "DB_PASSWORD", "dbPassword2", "MYSQL_ROOT_PASSWORD", "db_pass",
                                      "passwordConfirm", "DB_PASSWORD_PROD", "new-passwd", "admin.pwd"]))
    assert not any(map(is_password_name, ["password_hash", "PASSWORD_FILE", "bypass", "pass_through", "passenger",
                                          "password_min_length", "errors.password", "INVALID_PASSWORD", "token"]))


def test_the_rules_needs_skip_only_windows_without_findings(monkeypatch):
    """A rule is not run on a window without one of its `needs`: on every case above, alone and
    all together, the findings are those of the rules run on every window."""
    from filters import pii

    texts = [content for _, _, content, _, _ in SECRETS] + [content for _, _, content in LOOK_ALIKES]
    texts.append("".join(texts))
    with_needs = pii.build_analyzer(PiiConfig())
    monkeypatch.setattr(pii, "RULE_NEEDS", {})
    without = pii.build_analyzer(PiiConfig())
    assert all(not rule.needs for rule in pii.rules(PiiConfig()))
    assert [pii.find(text, with_needs) for text in texts] == [pii.find(text, without) for text in texts]
