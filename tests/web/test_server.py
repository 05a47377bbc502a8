"""The code owners' page through Starlette's test client: what a search, a pasted file and an
opt-out request show, and how bad input is refused (a clear 4xx, nothing changed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from corpus_core.errors import ConfigError
from corpus_core.records import normalized_sha256
from manifests import optout
from pipeline import search
from pipeline import web as web_module
from pipeline.cli import main
from pipeline.web import RateLimiter, ServeConfig, client_address, create_app
from tests.conftest import program
from tests.web.conftest import DROPPED_REPO, KEPT_REPO, ROWS, near_copy


def client(corpus, registry: Path | None = None, **settings) -> TestClient:
    builds = search.open_builds([corpus.out, corpus.second])
    return TestClient(create_app(ServeConfig(builds, registry=registry, **settings)), base_url="http://testserver")


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)


def test_the_normalized_hash_ignores_what_copying_changes():
    text = "def f():\n    return 1\n"
    for variant in ("\ufeff" + text, text.replace("\n", "\r\n"), "def f():   \n    return 1\t\n\n\n", text.rstrip()):
        assert normalized_sha256(variant) == normalized_sha256(text)
    assert normalized_sha256("def f():\n    return 2\n") != normalized_sha256(text)
    assert normalized_sha256("  indented\n") != normalized_sha256("indented\n")  # leading space counts


def test_search_by_owner_shows_every_build_with_kept_and_dropped_files(corpus):
    page = client(corpus).get("/search", params={"q": "OCTO", "by": "owner"})
    assert page.status_code == 200
    assert page.text.count('class="build-result"') == 2  # corpus and corpus-v2, side by side
    assert 'data-build="corpus"' in page.text and 'data-build="corpus-v2"' in page.text
    assert f'<td class="repo">{KEPT_REPO}</td>' in page.text and "shard 0, row" in page.text
    dropped = client(corpus).get("/search", params={"q": DROPPED_REPO, "by": "repo"})
    assert dropped.status_code == 200 and "license_not_allowed" in dropped.text
    assert "fails the allowlist" in dropped.text  # the reason in plain words
    assert "MIT" not in dropped.text.split("<main>")[1].split("</table>")[0]  # its own license, not another's
    assert "GPL-3.0-only" in dropped.text


def test_a_repository_named_with_html_is_shown_as_text(corpus):
    page = client(corpus).get("/search", params={"q": "evil", "by": "owner"})
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "&lt;img src=x onerror=alert(2)&gt;.py" in page.text and "<img" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # and no script may run on the page


def test_a_pasted_file_is_found_exactly_whatever_its_line_endings_and_nearly_when_edited(corpus):
    web = client(corpus)
    token = token_of(web.get("/").text)
    original = ROWS[1]["content"]
    exact = web.post("/paste", data={"token": token, "content": "\ufeff" + original.replace("\n", "  \r\n")})
    assert exact.status_code == 200
    assert "Exact copies: 1" in exact.text and ROWS[1]["path"] in exact.text
    near = web.post("/paste", data={"token": token, "content": near_copy(original), "build": "corpus"})
    assert near.status_code == 200 and "No exact copy in corpus" in near.text
    assert near.text.count('class="build-result"') == 1
    section = near.text.split("Near copies")[1]
    assert ROWS[1]["path"] in section and re.search(r"<td>(\d+)%</td>", section)
    unrelated = web.post("/paste", data={"token": token, "content": program(999, 60)})
    assert "No near copy in corpus" in unrelated.text
    short = web.post("/paste", data={"token": token, "content": "x = 1"})
    assert "too short for near matching" in short.text


def test_an_older_build_is_served_with_what_it_has(corpus, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest").mkdir()
    for name in ("run.json", "repos.parquet"):
        (old / "manifest" / name).write_bytes((corpus.out / "manifest" / name).read_bytes())
    files = pq.read_table(corpus.out / "manifest" / "files")
    # a build from before parts: one files.parquet
    pq.write_table(files.drop_columns(["owner", "normalized_sha256"]), old / "manifest" / "files.parquet")
    (build,) = search.open_builds([old]).values()
    assert build.near is None  # no signatures kept
    assert {row["repo"] for row in search.by_owner(build, "octo").files} == {KEPT_REPO}  # the name's owner part
    exact, near = search.by_content(build, ROWS[1]["content"])
    assert [row["path"] for row in exact.files] == [ROWS[1]["path"]] and "no MinHash signatures" in near.note


@pytest.mark.parametrize("params, status, words", [
    ({"q": "octo", "by": "email"}, 400, "Choose owner or repo"),
    ({"q": "octo", "sort": "size"}, 400, "Unknown parameter"),
    ({"q": "x" * 201, "by": "owner"}, 400, "at most 200"),
    ({"q": "", "by": "owner"}, 400, "Type a GitHub user"),
    ({"q": "../../etc/passwd", "by": "repo"}, 400, "Not a valid repository"),
    ({"q": "/etc/passwd", "by": "owner"}, 400, "Not a valid owner"),
    ({"q": "octo", "build": "../corpus"}, 400, "No build is served"),
    ({"q": "octo", "build": "other"}, 400, "No build is served"),
])
def test_bad_search_parameters_get_a_clear_400(corpus, params, status, words):
    page = client(corpus).get("/search", params=params)
    assert page.status_code == status and words in page.text


def test_paths_in_urls_never_reach_the_filesystem(corpus):
    web = client(corpus)
    assert web.get("/builds/corpus/report.html").status_code == 200
    for url in ("/builds/..%2F..%2Fetc/report.html", "/builds/corpus/../../etc/passwd", "/static/../web.py",
                "/builds/%2e%2e/report.html", "/builds/corpus/manifest/run.json"):
        assert web.get(url).status_code == 404, url


def test_the_report_is_served_sandboxed(corpus):
    page = client(corpus).get("/builds/corpus-v2/report.html")
    assert page.status_code == 200 and page.headers["content-security-policy"].startswith("sandbox allow-scripts")


def test_oversized_or_malformed_posts_are_refused_and_change_nothing(corpus, tmp_path):
    registry = tmp_path / "optout.jsonl"
    web = client(corpus, registry=registry, max_paste_bytes=1000)
    token = token_of(web.get("/").text)
    too_big = web.post("/paste", data={"token": token, "content": "a = 1\n" * 200})
    assert too_big.status_code == 413 and "at most 1,000 are compared" in too_big.text
    huge = web.post("/paste", content=b"content=" + b"a" * 20_000, headers={
        "content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413 and "too large" in huge.text
    assert web.post("/paste", files={"content": ("a.py", b"x = 1")}).status_code == 415
    assert web.post("/paste", data={"token": token, "content": "x", "extra": "1"}).status_code == 400
    assert web.post("/optout", data={"token": token, "kind": "owner", "value": "x" * 1001,
                                     "contact": "me"}).status_code == 400
    bad = web.post("/optout", data={"token": token, "kind": "path", "value": "../../etc/*", "repo": "a/b",
                                    "contact": "me@example.com"})
    assert bad.status_code == 400 and "relative pattern" in bad.text
    script = web.post("/optout", data={"token": token, "kind": "repo", "value": "<script>x</script>",
                                       "contact": "me@example.com"})
    assert script.status_code == 400 and "&lt;script&gt;" in script.text and "<script>" not in script.text
    assert not optout.requests_path(registry).exists() and not registry.exists()


def test_a_cross_site_post_or_one_without_the_token_is_refused(corpus, tmp_path):
    registry = tmp_path / "optout.jsonl"
    web = client(corpus, registry=registry)
    form = {"kind": "owner", "value": "octo", "contact": "octo@example.com"}
    assert web.post("/optout", data=form).status_code == 403  # no cookie, no token
    token = token_of(web.get("/optout").text)
    assert web.post("/optout", data={**form, "token": "0" * 64}).status_code == 403
    other = web.post("/optout", data={**form, "token": token}, headers={"origin": "https://evil.example"})
    assert other.status_code == 403 and "another site" in other.text
    assert web.post("/optout", data={**form, "token": token}, headers={"sec-fetch-site": "cross-site"}
                    ).status_code == 403
    stranger = TestClient(web.app)  # another browser: its own cookie, so the token above is not its own
    stranger.get("/optout")
    assert stranger.post("/optout", data={**form, "token": token}).status_code == 403
    assert not optout.requests_path(registry).exists()
    sent = web.post("/optout", data={**form, "token": token}, headers={"origin": "http://testserver"})
    assert sent.status_code == 200 and optout.requests_path(registry).exists()


def test_a_burst_over_the_rate_limit_gets_429_and_a_forwarded_header_does_not_evade_it(corpus):
    web = client(corpus, rate_limit=5)
    assert [web.get("/", headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code for i in range(5)] == [200] * 5
    refused = web.get("/search", params={"q": "octo"}, headers={"x-forwarded-for": "10.9.9.9"})
    assert refused.status_code == 429 and "at most 5 a minute" in refused.text
    assert int(refused.headers["retry-after"]) >= 1


def test_the_client_address_comes_from_a_trusted_proxy_only():
    proxies = ServeConfig({}, trusted_proxies=("127.0.0.1", "10.0.0.0/8")).networks
    assert client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"  # not a proxy: header ignored
    assert client_address("127.0.0.1", "198.51.100.1", proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3", proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", "not-an-address", proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    with pytest.raises(ConfigError, match="--trusted-proxy"):
        ServeConfig({}, trusted_proxies=("proxy.example",))
    limiter = RateLimiter(2, window=60)
    assert [limiter.wait("a", now) for now in (0, 1, 2)] == [0, 0, 58]
    assert limiter.wait("a", 61) == 0 and limiter.wait("b", 2) == 0
    # found in review: the client writes the left of the header, so hops are taken from the right;
    # 40 made-up hops before the proxy's own entry change nothing
    made_up = ", ".join(f"6.6.6.{i}" for i in range(40))
    assert client_address("10.0.0.1", f"{made_up}, 203.0.113.9", proxies) == "203.0.113.9"
    # an IPv4 proxy seen on a dual-stack socket, and hops written with a port
    assert client_address("::ffff:10.0.0.1", "198.51.100.7:5678", proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", "[2001:db8::5]:443", proxies) == "2001:db8::5"


def test_the_rate_limiter_stays_bounded_and_counts_an_ipv6_host_by_its_64(monkeypatch):
    monkeypatch.setattr(web_module, "MAX_CLIENTS", 100)
    limiter = RateLimiter(2, window=60)
    for number in range(1000):  # a flood of addresses: constant memory, the oldest forgotten
        limiter.wait(f"198.51.{number // 256}.{number % 256}", 0)
    assert len(limiter.seen) == 100
    assert limiter.wait("2001:db8::1", 1) == 0 and limiter.wait("2001:db8::2", 1) == 0
    assert limiter.wait("2001:db8::ffff", 1) > 0  # the same /64: the same client


def test_an_optout_request_is_pending_until_reviewed(corpus, tmp_path, capsys):
    registry = tmp_path / "optout.jsonl"
    web = client(corpus, registry=registry)
    token = token_of(web.get("/optout", params={"kind": "repo", "value": KEPT_REPO}).text)
    form = {"token": token, "kind": "repo", "value": KEPT_REPO, "contact": "octo@example.com", "reason": "mine"}
    sent = web.post("/optout", data=form)
    assert sent.status_code == 200 and "Request received" in sent.text and "pending" in sent.text
    assert "corpus optout apply" in sent.text  # what happens next
    again = web.post("/optout", data=form)
    assert "Already waiting for review" in again.text
    assert not registry.exists()  # the registry itself is never written by the page
    (pending,) = optout.load_requests(registry)
    assert pending.status == "pending" and pending.value == KEPT_REPO

    assert main(["optout", "review", "--registry", str(registry)]) == 0
    assert "1 pending request(s)" in capsys.readouterr().out
    assert main(["optout", "review", "--registry", str(registry), "--accept", pending.id]) == 2  # --by missing
    assert main(["optout", "review", "--registry", str(registry), "--accept", pending.id, "--by", "maintainer"]) == 0
    (entry,) = optout.load(registry)
    assert (entry.kind, entry.value, entry.requested_by) == ("repo", KEPT_REPO, "octo@example.com")
    assert entry.accepted_by == "maintainer" and entry.accepted_at
    (decided,) = optout.load_requests(registry)
    assert decided.status == "accepted" and decided.decided_by == "maintainer"
    assert main(["optout", "review", "--registry", str(registry), "--reject", pending.id, "--by", "x"]) == 2
    assert "Already opted out" in web.post("/optout", data=form).text


def test_a_rejected_request_stays_out_of_the_registry(tmp_path):
    registry = tmp_path / "optout.jsonl"
    request, new = optout.submit(registry, optout.make_request("owner", "octo", repo=None, contact="a@b.c",
                                                               reason=""))
    assert new
    assert optout.decide(registry, request.id, accept=False, by="maintainer", note="not the owner").status == \
        "rejected"
    assert optout.load(registry) == []
    lines = [json.loads(line) for line in optout.requests_path(registry).read_text().splitlines()]
    assert lines[0]["note"] == "not the owner"
    with pytest.raises(ConfigError, match="control characters"):
        optout.make_request("owner", "octo", repo=None, contact="a\x1b[31m", reason="")


def test_serve_refuses_what_is_not_a_build(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a finished build" in capsys.readouterr().err


def test_behind_a_trusted_proxy_the_forwarded_host_and_client_count(corpus, tmp_path):
    registry = tmp_path / "optout.jsonl"
    builds = search.open_builds([corpus.out])
    app = create_app(ServeConfig(builds, registry=registry, trusted_proxies=("127.0.0.1",), rate_limit=3))
    proxied = TestClient(app, client=("127.0.0.1", 40000))
    token = token_of(proxied.get("/optout").text)
    form = {"token": token, "kind": "owner", "value": "octo", "contact": "octo@example.com"}
    public = {"origin": "https://corpus.example", "x-forwarded-host": "corpus.example"}
    assert proxied.post("/optout", data=form, headers={"origin": "https://corpus.example"}).status_code == 403
    assert proxied.post("/optout", data=form, headers=public).status_code == 200
    direct = TestClient(app, client=("203.0.113.5", 40000))  # not the proxy: its X-Forwarded-Host is not believed
    direct_token = token_of(direct.get("/optout").text)
    assert direct.post("/optout", data={**form, "token": direct_token}, headers=public).status_code == 403
    # each forwarded client has its own budget; the proxy's own address is not one client for all
    assert [proxied.get("/", headers={"x-forwarded-for": "198.51.100.7"}).status_code for _ in range(4)] == \
        [200, 200, 200, 429]
    assert proxied.get("/", headers={"x-forwarded-for": "198.51.100.8"}).status_code == 200


@pytest.mark.parametrize("contact, reason", [
    ("octo@example.com\nACCEPTED by admin", "mine"),  # a forged line in `optout review`
    ("octo@example.com", "mine \x9b31m"),  # an 8-bit CSI
    ("\u202eoctо@example.com", "mine"),  # a bidirectional override
])
def test_a_request_that_could_forge_a_reviewers_terminal_is_refused(tmp_path, contact, reason):
    with pytest.raises(ConfigError, match="control characters are not allowed"):
        optout.make_request("repo", "octo/hello", repo=None, contact=contact, reason=reason)
    assert optout.make_request("repo", "octo/hello", repo=None, contact="octo@example.com",
                               reason="mine\nand my team's").reason == "mine\nand my team's"
