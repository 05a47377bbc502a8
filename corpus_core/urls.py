"""Credentials never leave the process: every source string, URL or message that the build
writes (manifests, NOTICE, run.json, the summary, errors, cache keys) goes through
`scrub_credentials` first, so `https://user:token@host/repo` is recorded as
`https://***@host/repo`."""

from __future__ import annotations

import re

# the userinfo of a URL with a scheme: `scheme://user[:password]@`; `git@host:owner/repo`
# (ssh's user, no secret) has no scheme and is left alone
# (up to the last `@` before the host: a password may hold an `@` of its own)
# (`scheme:/` too: a URL made a path, `https:/user:token@host`, when given without `git+`)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}:/{1,2})[^\s/]{0,1024}@")


def scrub_credentials(text: str | None) -> str | None:
    """`text` with every URL's `user:password@` replaced by `***@`."""
    if not text or "@" not in text:
        return text
    return _USERINFO.sub(r"\1***@", text)


# --- where a repository comes from ------------------------------------------------------------

# hosts whose first path part is an account (a user or an organization) that owns the repository:
# a URL in package metadata names its owner only on one of these (a project's home page may be
# anywhere); a git remote is a repository on any host
CODE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "git.sr.ht", "sr.ht"})
# first path parts that name a page of the host, not an account (the account follows them)
NOT_ACCOUNTS = {"github.com": ("sponsors", "orgs", "users", "apps", "marketplace", "features", "enterprises"),
                "gitlab.com": ("groups", "users", "-")}
# npm's shorthands for a repository: `github:owner/name`, `gitlab:…`, `bitbucket:…`
_SHORTHAND = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
ACCOUNT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_])?$")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\s][^\s]*)$")
_WITH_SCHEME = re.compile(r"^(?:git\+)?[a-z][a-z0-9+.-]*://(?:[^/@\s]*@)?(?P<host>[^/:\s]+)(?::\d*)?(?P<path>/[^\s]*)?$",
                          re.IGNORECASE)


def host_and_path(url: str) -> tuple[str, list[str]] | None:
    """(host, path parts) of a repository URL in any of the forms git and npm accept:
    `https://host/o/n(.git)`, `ssh://git@host/o/n`, `git@host:o/n`, `git+https://…`,
    `github:o/n`; None for local paths and `file://` URLs."""
    url = url.strip()
    if match := _WITH_SCHEME.match(url):
        if url.lower().startswith(("file:", "git+file:")):
            return None
        host, path = match["host"].lower(), match["path"] or ""
    elif (prefix := url.partition(":")[0].lower()) in _SHORTHAND and "/" in url:
        host, path = _SHORTHAND[prefix], url.partition(":")[2]
    elif match := _SCP.match(url):
        host, path = match["host"].lower(), match["path"]
    else:
        return None
    parts = [part for part in re.split(r"[/?#]", path.removesuffix(".git"))[:3] if part]
    return host, parts


def repository_owner(url: str | None, any_host: bool) -> str | None:
    """The account that owns the repository at `url`: the first part of its path on a code
    host (`github.com/psf/requests` -> `psf`; sourcehut's `~user` -> `user`). `any_host`: the
    URL is a git remote, a repository wherever it is; otherwise only CODE_HOSTS count (a
    package's home page may be a project site). None when no owner can be told."""
    found = host_and_path(url) if url else None
    if found is None:
        return None
    host, parts = found
    host = host.removeprefix("www.")
    if parts and parts[0].lower() in NOT_ACCOUNTS.get(host, ()):  # github.com/sponsors/psf is psf's page
        parts = parts[1:]
    if len(parts) < 2 or not (any_host or host in CODE_HOSTS):
        return None
    owner = parts[0].removeprefix("~")
    return owner if ACCOUNT.match(owner) else None
