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
