"""`corpus serve`: "Am I in The Stack?" for code owners, over one or more finished builds.

A Starlette application with Jinja templates (pipeline/templates/), searching the builds
through pipeline/search.py and taking opt-out requests as *pending* entries of the requests
file beside the registry (manifests/optout.py; `corpus optout review` decides them).

Safe by default, for a page anyone may reach behind a reverse proxy:
- it binds to 127.0.0.1 unless told otherwise (`corpus serve --host`);
- every parameter is checked against a closed set or a pattern and a length; a pasted file
  and a request body have a size cap; a request's text never names a file: builds are
  looked up by name in the table made at start, and the report's path is fixed;
- templates escape everything they show (autoescape), and a Content-Security-Policy allows
  no script on the app's pages; the report is served sandboxed;
- each client gets at most `rate_limit` requests a minute; the client is the connecting
  address, or, when that address is a configured trusted proxy, the last address its
  X-Forwarded-For names that is not itself a trusted proxy;
- a POST needs the form token of the page it came from (an HMAC of a SameSite=Strict
  cookie), and one a browser marks cross-site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
import urllib.parse
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus_core.errors import ConfigError
from manifests import optout
from pipeline import search
from pipeline.search import ServedBuild

HERE = Path(__file__).parent
MAX_QUERY = 200  # characters of an owner or repository name
MAX_FIELD = 1000  # characters of any other form field (a reason)
MAX_FIELDS = 10  # fields in a form
SEARCH_KINDS = ("owner", "repo")
COOKIE = "corpus_form"
WINDOW_S = 60.0
MAX_CLIENTS = 100_000  # rate-limit entries kept; past it, clients idle for a window are forgotten
PAGE_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
               "frame-ancestors 'none'")
# the report is our own file but holds a build's strings: its scripts run in a sandbox with no origin
REPORT_POLICY = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
                 "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")
BUILD_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")


class BadRequest(Exception):
    """A request the page refuses: its status and the sentence shown."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServeConfig:
    builds: dict[str, ServedBuild]
    registry: Path | None = None  # where accepted opt-outs go; requests are written beside it
    rate_limit: int = 60  # requests per client per minute
    max_paste_bytes: int = 256 * 1024  # of a pasted file, UTF-8
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For is believed
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # keys the form tokens

    def __post_init__(self) -> None:
        if self.rate_limit < 1 or self.max_paste_bytes < 1:
            raise ConfigError("serve: --rate-limit and --max-paste-bytes must be at least 1")
        try:
            self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies)
        except ValueError as err:
            raise ConfigError(f"--trusted-proxy: {err}") from None


class RateLimiter:
    """At most `limit` requests per client in any `window` seconds (a sliding log). At most
    MAX_CLIENTS clients are remembered, the least recently seen forgotten first, so a flood of
    addresses costs constant memory and time per request. IPv6 clients count by their /64
    (one host holds a whole /64)."""

    def __init__(self, limit: int, window: float = WINDOW_S):
        self.limit, self.window = limit, window
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead (and it is counted); else seconds until it may."""
        now = time.monotonic() if now is None else now
        client = _bucket(client)
        log = self.seen.pop(client, None)
        if log is None:
            log = deque()
            while len(self.seen) >= MAX_CLIENTS:
                self.seen.popitem(last=False)
        self.seen[client] = log  # the most recently seen last
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            return log[0] + self.window - now
        log.append(now)
        return 0.0


def _bucket(client: str) -> str:
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a peer or an X-Forwarded-For hop gives it: `1.2.3.4`, `1.2.3.4:5678`,
    `[2001:db8::1]:443`, `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket); None if not one."""
    text = (address or "").strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def trusted(address: str | None, networks: tuple) -> bool:
    """True when `address` is one of the configured trusted proxies."""
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, networks: tuple) -> str:
    """The client: the peer, unless the peer is a trusted proxy; then the rightmost address
    of X-Forwarded-For that is not a trusted proxy (the ones left of it are the client's say)."""
    if peer is None or not trusted(peer, networks) or not forwarded_for:
        return peer or "unknown"
    # from the right: the proxy appended the last hop; the ones left of it are the client's say
    for hop in reversed([part.strip() for part in forwarded_for.split(",")][-32:]):
        ip = _ip(hop)
        if ip is None:
            return peer  # a malformed header: the proxy's own address stands in
        if not trusted(str(ip), networks):
            return str(ip)
    return peer


class Guard:
    """ASGI middleware: the rate limit (per client) and the security headers of every answer."""

    def __init__(self, app: ASGIApp, config: ServeConfig, pages: Environment):
        self.app, self.config, self.pages = app, config, pages
        self.limiter = RateLimiter(config.rate_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        peer = scope.get("client")[0] if scope.get("client") else None
        client = client_address(peer, headers.get("x-forwarded-for"), self.config.networks)
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY")]
                names = {k.lower() for k, _ in message.get("headers", [])}
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", PAGE_POLICY.encode()))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        if not path.startswith("/static/"):
            wait = self.limiter.wait(client)
            if wait > 0:
                seconds = max(1, int(wait + 0.999))
                response = error_page(self.pages, 429, f"Too many requests from your address: at most "
                                      f"{self.config.rate_limit} a minute. Try again in {seconds} s.")
                response.headers["retry-after"] = str(seconds)
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


def error_page(pages: Environment, status: int, message: str) -> HTMLResponse:
    return HTMLResponse(pages.get_template("error.html").render(status=status, message=message), status_code=status)


def create_app(config: ServeConfig) -> ASGIApp:
    pages = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True)
    pages.filters["thousands"] = lambda value: f"{value:,}" if isinstance(value, int) else value
    builds = config.builds

    def form_token(request: Request) -> tuple[str, str | None]:
        """The page's form token, and the cookie to set when the browser has none yet."""
        cookie = request.cookies.get(COOKIE)
        fresh = None
        if not cookie or not re.fullmatch(r"[0-9a-f]{32}", cookie):
            cookie = fresh = secrets.token_hex(16)
        return hmac.new(config.secret, cookie.encode(), hashlib.sha256).hexdigest(), fresh

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        token, fresh = form_token(request)
        response = HTMLResponse(pages.get_template(template).render(
            builds=list(builds.values()), token=token, optout_open=config.registry is not None,
            max_paste=config.max_paste_bytes, **values), status_code=status)
        if fresh:
            response.set_cookie(COOKIE, fresh, httponly=True, samesite="strict", path="/",
                                secure=request.url.scheme == "https")
        return response

    def query(request: Request, allowed: set[str]) -> dict[str, str]:
        params = request.query_params
        unknown = sorted(set(params.keys()) - allowed)
        if unknown:
            raise BadRequest(400, f"Unknown parameter {unknown[0][:40]!r}: this page takes "
                                  f"{', '.join(sorted(allowed))}.")
        values = {}
        for name in allowed:
            got = params.getlist(name)
            if len(got) > 1:
                raise BadRequest(400, f"Parameter {name!r} is given {len(got)} times; give it once.")
            if got:
                values[name] = got[0]
        return values

    async def form(request: Request, limit: int) -> dict[str, str]:
        """The POSTed form, checked: its size, its type, its token, where it came from."""
        site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        host = request.headers.get("host")
        if trusted(request.client.host if request.client else None, config.networks):
            host = (request.headers.get("x-forwarded-host") or host or "").split(",")[0].strip()  # the browser's name
        if site == "cross-site" or (origin and origin != "null" and urllib.parse.urlsplit(origin).netloc != host):
            raise BadRequest(403, "This form was sent from another site; open this page and send it from here.")
        if (request.headers.get("content-type") or "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise BadRequest(415, "Send the form as the page does (application/x-www-form-urlencoded).")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise BadRequest(413, f"The request is too large: at most {limit:,} bytes.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BadRequest(413, f"The request is too large: at most {limit:,} bytes.")
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                           max_num_fields=MAX_FIELDS, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "The form could not be read (not UTF-8, or too many fields).") from None
        values: dict[str, str] = {}
        for name, value in pairs:
            if name in values:
                raise BadRequest(400, f"Field {name[:40]!r} is given twice.")
            values[name] = value
        expected, _ = form_token(request)
        if not (request.cookies.get(COOKIE) and hmac.compare_digest(values.get("token", ""), expected)):
            raise BadRequest(403, "The form's token is missing or stale: reload the page and send the form again "
                                  "(cookies must be on for this site).")
        return values

    def chosen_builds(name: str | None) -> list[ServedBuild]:
        if name is None or name == "":
            return list(builds.values())
        if not BUILD_NAME.match(name) or name not in builds:
            raise BadRequest(400, f"No build is served as {name[:60]!r}; choose one of the list.")
        return [builds[name]]

    async def home(request: Request) -> Response:
        query(request, set())
        return render(request, "index.html")

    async def find(request: Request) -> Response:
        values = query(request, {"q", "by", "build"})
        text, by = values.get("q", "").strip(), values.get("by", "owner")
        if by not in SEARCH_KINDS:
            raise BadRequest(400, f"Search by {by[:40]!r}? Choose owner or repo.")
        if not text:
            raise BadRequest(400, "Type a GitHub user or organization, or a repository as owner/name.")
        if len(text) > MAX_QUERY:
            raise BadRequest(400, f"That is {len(text)} characters; names are at most {MAX_QUERY}.")
        try:
            (optout.check_owner if by == "owner" else optout.check_repo)(text)
        except ConfigError as err:
            raise BadRequest(400, f"Not a valid {'owner' if by == 'owner' else 'repository'} name: {err}") from None
        lookup = search.by_owner if by == "owner" else search.by_repo
        found = [await run_in_threadpool(lookup, build, text) for build in chosen_builds(values.get("build"))]
        return render(request, "results.html", query=text, by=by, found=found, near=None)

    async def paste(request: Request) -> Response:
        query(request, set())
        values = await form(request, 3 * config.max_paste_bytes + 8192)  # URL-encoding triples a byte at most
        unknown = sorted(set(values) - {"content", "token", "build"})
        if unknown:
            raise BadRequest(400, f"Unknown field {unknown[0][:40]!r}.")
        content = values.get("content", "")
        size = len(content.encode("utf-8", "surrogatepass"))
        if size > config.max_paste_bytes:
            raise BadRequest(413, f"The pasted file is {size:,} bytes; at most {config.max_paste_bytes:,} are "
                                  "compared. Look up its repository instead.")
        if not content.strip():
            raise BadRequest(400, "Paste the content of a file to look for it.")
        if "\x00" in content:
            raise BadRequest(400, "The pasted text holds NUL characters: binary files are not in the data set.")
        exact, near = [], []
        for build in chosen_builds(values.get("build")):
            same, close = await run_in_threadpool(search.by_content, build, content)
            exact.append(same)
            near.append(close)
        return render(request, "results.html", query=None, by="content", found=exact, near=near)

    async def optout_form(request: Request) -> Response:
        values = query(request, {"kind", "value"})
        kind = values.get("kind", "owner")
        if kind not in optout.REQUEST_KINDS:
            raise BadRequest(400, f"Opt out by {kind[:40]!r}? Choose owner, repo or path.")
        value = values.get("value", "")
        if len(value) > MAX_QUERY:
            raise BadRequest(400, f"That is {len(value)} characters; names are at most {MAX_QUERY}.")
        return render(request, "optout.html", kind=kind, value=value, repo="", contact="", reason="", error=None)

    async def optout_send(request: Request) -> Response:
        query(request, set())
        if config.registry is None:
            raise BadRequest(404, "This server takes no opt-out requests; ask the data set's maintainers.")
        values = await form(request, 16 * 1024)
        unknown = sorted(set(values) - {"kind", "value", "repo", "contact", "reason", "token"})
        if unknown:
            raise BadRequest(400, f"Unknown field {unknown[0][:40]!r}.")
        for name, text in values.items():
            if len(text) > MAX_FIELD:
                raise BadRequest(400, f"Field {name!r} is {len(text)} characters; at most {MAX_FIELD}.")
        kind = values.get("kind", "")
        shown = {name: values.get(name, "") for name in ("value", "repo", "contact", "reason")}
        try:
            wanted = optout.make_request(kind, shown["value"], repo=shown["repo"] if kind == "path" else None,
                                         contact=shown["contact"], reason=shown["reason"])
            request_, new = await run_in_threadpool(optout.submit, config.registry, wanted)
        except ConfigError as err:
            return render(request, "optout.html", status=400, kind=kind if kind in optout.REQUEST_KINDS else "owner",
                          error=str(err), **shown)
        return render(request, "optout_done.html", request_=request_, new=new)

    async def report(request: Request) -> Response:
        query(request, set())
        name = request.path_params["name"]
        build = builds.get(name) if BUILD_NAME.match(name) else None
        if build is None or build.report is None:
            raise BadRequest(404, "No report for that build: `corpus report OUT` writes one.")
        return FileResponse(build.report, media_type="text/html; charset=utf-8",
                            headers={"content-security-policy": REPORT_POLICY, "cache-control": "no-cache"})

    async def stylesheet(request: Request) -> Response:
        return FileResponse(HERE / "static" / "site.css", media_type="text/css",
                            headers={"cache-control": "max-age=3600"})

    async def on_bad_request(request: Request, err: Exception) -> Response:
        return error_page(pages, getattr(err, "status", 400), getattr(err, "message", "Request refused."))

    async def on_http_error(request: Request, err: Exception) -> Response:
        status = getattr(err, "status_code", 500)
        message = {404: "No such page.", 405: "This page does not take that method."}.get(status, "Request refused.")
        return error_page(pages, status, message)

    app = Starlette(routes=[
        Route("/", home, methods=["GET"]),
        Route("/search", find, methods=["GET"]),
        Route("/paste", paste, methods=["POST"]),
        Route("/optout", optout_form, methods=["GET"]),
        Route("/optout", optout_send, methods=["POST"]),
        Route("/builds/{name}/report.html", report, methods=["GET"]),
        Route("/static/site.css", stylesheet, methods=["GET"]),
    ], exception_handlers={BadRequest: on_bad_request, 404: on_http_error, 405: on_http_error})
    return Guard(app, config, pages)
