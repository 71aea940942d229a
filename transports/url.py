"""Transport URLs: which scheme, and how to print one without its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def scheme_of(url: str) -> str:
    """The scheme of `url`, lower-cased ('' when there is none)."""
    return urlsplit(url).scheme.lower()


def mask_password(url: str) -> str:
    """`url` with its password replaced by '***', safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
