"""The gateway against generated requests: messages of every shape (text with NUL characters
and lone surrogates, numbers beyond any float, nesting thousands deep), bodies cut short,
gzipped in one member or several, truncated, not UTF-8, with every content type and
credentials right, wrong or missing, on every endpoint. Whatever comes, the answer is never a
5xx, a refusal says why in the gateway's JSON error shape, and what is accepted is stored.
Seeded, so a run is the same run every time; bounded by a number of examples."""

import base64
import gzip
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess

EXAMPLES = 1500
ENDPOINTS = ["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias",
             "/v1/batch", "/v1/import", "/beacon/v1/batch", "/v1/t", "/v1/nowhere"]  # fmt: skip
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                 ""]  # fmt: skip

# Text of any Unicode (surrogates and NUL included: JSON carries them as escapes).
texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
values = st.recursive(
    st.none()
    | st.booleans()
    | texts
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]) | texts,
        "userId": texts | st.integers(),
        "anonymousId": texts,
        "messageId": texts | st.integers(),
        "event": texts,
        "properties": values,
        "traits": values,
        "context": values,
        "sentAt": texts,
        "writeKey": st.just(WRITE_KEY) | texts,
    },
).flatmap(lambda m: st.dictionaries(texts, values, max_size=3).map(lambda extra: {**extra, **m}))
batches = st.fixed_dictionaries(
    {"batch": st.lists(messages | values, max_size=5)},
    optional={"context": values, "sentAt": texts},
)
documents = messages | batches | values


def _deep(depth: int) -> bytes:
    """A message nested `depth` deep, with a lone surrogate at the bottom."""
    inner = b"[" * depth + b'"\\ud800"' + b"]" * depth
    return b'{"userId": "u", "type": "track", "properties": ' + inner + b"}"


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A body and the headers that say how it is encoded."""
    raw = draw(
        documents.map(lambda d: json.dumps(d).encode())
        | st.integers(min_value=1, max_value=20_000).map(_deep)
        | st.binary(max_size=200)
    )
    headers: dict[str, str] = {}
    if draw(st.booleans()):  # cut short
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    encoding = draw(st.sampled_from(["", "gzip", "gzip-members", "gzip-truncated", "bogus"]))
    if encoding == "gzip":
        raw = gzip.compress(raw)
    elif encoding == "gzip-members":
        cut = len(raw) // 2
        raw = gzip.compress(raw[:cut]) + gzip.compress(raw[cut:])
    elif encoding == "gzip-truncated":
        packed = gzip.compress(raw)
        raw = packed[: draw(st.integers(min_value=0, max_value=len(packed) - 1))]
    if encoding:
        headers["content-encoding"] = encoding.partition("-")[0]
    headers["content-type"] = draw(st.sampled_from(CONTENT_TYPES))
    return raw, headers


credentials = st.sampled_from(["basic", "basic-wrong", "none", "query", "garbage"])


def _auth(kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters for a way of giving (or not) the write key."""
    key = WRITE_KEY if kind != "basic-wrong" else "not-a-key"
    if kind in ("basic", "basic-wrong"):
        token = base64.b64encode(f"{key}:".encode()).decode()
        return {"authorization": f"Basic {token}"}, {}
    if kind == "query":
        return {}, {"writeKey": key}
    if kind == "garbage":
        return {"authorization": "Basic !!!not base64\x7f"}, {}
    return {}, {}


def test_whatever_is_sent_the_gateway_answers_without_a_5xx(
    gateway: GatewayProcess, workspace_config: str
) -> None:
    answered: dict[int, int] = {}
    accepted = 0
    with httpx.Client(base_url=gateway.url, timeout=30) as client:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(path=st.sampled_from(ENDPOINTS), body=bodies(), auth=credentials)
        def fuzz(path: str, body: tuple[bytes, dict[str, str]], auth: str) -> None:
            nonlocal accepted
            content, headers = body
            extra, params = _auth(auth)
            answer = client.post(path, content=content, headers={**headers, **extra},
                                 params=params)  # fmt: skip
            answered[answer.status_code] = answered.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (answer.status_code, answer.text, path, content[:300])
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == "application/json", (
                    answer.status_code, answer.headers, answer.content[:200], path, content[:300]
                )  # fmt: skip
                said: Any = answer.json()
                assert set(said) == {"code", "message"} and said["message"], said
            else:
                accepted += 1

        fuzz()
    assert answered.get(400, 0) > 0 and answered.get(401, 0) > 0, answered
    assert accepted > 0, answered  # (some of it was good: the fuzzing reached the store)
    assert len(ingested(workspace_config)) >= accepted
