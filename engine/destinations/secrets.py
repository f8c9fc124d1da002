"""Masking secrets (API keys, tokens) in whatever is shown of a delivery: the request, the error
and the vendor's answer.

A destination names the settings that hold secrets; their values are replaced wherever they
appear. Credentials after `Basic` or `Bearer` (an Authorization header) are masked whatever their
origin. A URL's password, and the values of its query parameters named like credentials, are
secrets too (`url_secrets`); a viewer sees neither a URL's user nor any query value
(`private_url`).
"""

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

MASK = "****"
_SCHEMES = re.compile(r"\b(Basic|Bearer)( +)[A-Za-z0-9+/=._~-]+", re.IGNORECASE)
_SHORTEST = 3  # a shorter "secret" would mask ordinary text and protect nothing
CREDENTIAL = re.compile(r"auth|key|token|secret|signature|sig\b|cookie|password|pass\b", re.I)


def _forms(secret: str) -> tuple[str, ...]:
    """A secret as it is, as JSON writes it inside a string (a quote or backslash escaped), and
    as a URL's query or path carries it (`+`, `/`, `=` percent-encoded: an error naming the
    URL a token travelled in shows it so)."""
    return secret, json.dumps(secret)[1:-1], quote_plus(secret), quote(secret, safe="")


def mask(text: str, secrets: Iterable[str]) -> str:
    return masked(text, forms(secrets))


def forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Every form of the secrets that `masked` replaces, longest first: a secret that contains
    another is masked whole. (Worked out once by whoever masks text after text: a router masks
    every answer it keeps.)"""
    found = {f for s in secrets if len(s) >= _SHORTEST for f in _forms(s)}
    return tuple(sorted(found, key=len, reverse=True))


def masked(text: str, forms: tuple[str, ...]) -> str:
    """The text with each of the secrets' `forms` replaced, and any credential after `Basic` or
    `Bearer`."""
    for secret in forms:
        text = text.replace(secret, MASK)
    return _SCHEMES.sub(rf"\1\2{MASK}", text)


def url_secrets(url: str) -> list[str]:
    """The secrets in a URL: its password, and the values of query parameters named like
    credentials (`?token=…`, `?api_key=…`, `?sig=…`), each as written and as decoded."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    for name, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if value and CREDENTIAL.search(unquote_plus(name)):
            found += [value, unquote_plus(value)]
    return found


def query_values(url: str) -> list[str]:
    """The values of a URL's query parameters, as written and as decoded."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    values = [value for _, _, value in (pair.partition("=") for pair in query.split("&"))]
    return [form for value in values if value for form in (value, unquote_plus(value))]


def private_url(url: str) -> str:
    """A URL as a viewer sees it: who it signs in as, and every query value, masked."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    query = "&".join(
        f"{name}={MASK}" if value else name
        for name, _, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
