"""Masking secrets (API keys, tokens) in whatever is shown of a delivery: the request, the error
and the vendor's answer.

A destination names the settings that hold secrets; their values are replaced wherever they
appear. Credentials after `Basic` or `Bearer` (an Authorization header) are masked whatever their
origin.
"""

import json
import re
from collections.abc import Iterable

MASK = "****"
_SCHEMES = re.compile(r"\b(Basic|Bearer)( +)[A-Za-z0-9+/=._~-]+", re.IGNORECASE)
_SHORTEST = 3  # a shorter "secret" would mask ordinary text and protect nothing


def mask(text: str, secrets: Iterable[str]) -> str:
    # Each secret as it is and as JSON writes it inside a string (a `"` or `\` in it is
    # escaped there), longest first: a secret that contains another is masked whole.
    forms = {f for s in secrets if len(s) >= _SHORTEST for f in (s, json.dumps(s)[1:-1])}
    for secret in sorted(forms, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _SCHEMES.sub(rf"\1\2{MASK}", text)
