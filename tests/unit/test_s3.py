"""The S3 destination without a store: settings, object keys, the pass-through mapping, how the
storage service's answers are judged, and secrets kept out of sight."""

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from botocore.exceptions import ClientError

from engine import codec
from engine.control import preview
from engine.destinations.base import BadSettings, Verdict
from engine.destinations.catalog import TYPES
from engine.destinations.s3 import S3, S3Settings, _answer

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SOURCE = UUID("0b7d2a8e-5f0c-4c55-9d1e-6a3c1f7e2b10")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def settings(**config: Any) -> S3Settings:
    parsed: S3Settings = S3.parse_settings({"bucketName": "events", **config})
    return parsed


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "bucketName"),
        ({"bucketName": ""}, "bucketName is empty"),
        ({"bucketName": "My_Bucket"}, "is not a valid bucket name"),
        ({"bucketName": "ab"}, "is not a valid bucket name"),
        ({"bucketName": "x" * 64}, "is not a valid bucket name"),
        ({"bucketName": "-events"}, "is not a valid bucket name"),
        ({"bucketName": "my..events"}, "is not a valid bucket name"),
        ({"bucketName": "events/2026"}, "put folders in prefix"),
        ({"bucketName": "s3://events"}, "put folders in prefix"),
        ({"bucketName": "192.168.10.20"}, "must not be an IP address"),
        ({"bucketName": "xn--events"}, "reserves"),
        ({"bucketName": "events-s3alias"}, "reserves"),
        ({"bucketName": "events", "prefix": "a\nb"}, "control characters"),
        ({"bucketName": "events", "prefix": "é" * 451}, "longer than 900 bytes"),
        ({"bucketName": "events", "accessKeyID": KEY_ID}, "without accessKey"),
        ({"bucketName": "events", "accessKey": SECRET}, "without accessKeyID"),
        (
            {"bucketName": "events", "accessKeyID": f"{KEY_ID} ", "accessKey": SECRET},
            "accessKeyID must be the access key id exactly",
        ),
        (
            {"bucketName": "events", "accessKeyID": KEY_ID, "accessKey": f" {SECRET}"},
            "accessKey must be the secret access key exactly",
        ),
        ({"bucketName": "events", "region": "eu west 1"}, "is not a region name"),
        ({"bucketName": "events", "endpoint": "ftp://minio:9000"}, "not an http(s) URL"),
        ({"bucketName": "events", "endpoint": "http://minio:9000/?x=1"}, "without query"),
        (
            {"bucketName": "events", "endpoint": "http://a:9000", "endPoint": "http://b:9000"},
            "endpoint and endPoint differ",
        ),
        ({"bucketName": "events", "iamRoleARN": "arn:aws:iam::1:role/x"}, "not supported"),
        ({"bucketName": "events", "enableSSE": "yes"}, "enableSSE"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BadSettings, match=re.escape(message)) as raised:
        S3.parse_settings(config)
    assert str(raised.value).startswith("Amazon S3 settings: ")


@pytest.mark.parametrize(
    "config",
    [
        {"accessKey": SECRET},
        {"accessKeyID": KEY_ID, "accessKey": f"{SECRET} \n"},
        {"accessKeyID": "bad id", "accessKey": SECRET},
        {"accessKeyID": KEY_ID, "accessKey": SECRET, "endpoint": "ftp://x"},
    ],
)
def test_settings_errors_never_quote_the_secret(config: dict[str, Any]) -> None:
    with pytest.raises(BadSettings) as raised:
        settings(**config)
    assert SECRET not in str(raised.value)


def test_a_rudderstack_config_imports_with_its_extra_keys() -> None:
    parsed = settings(
        prefix="", accessKeyID="", accessKey="", enableSSE=True, useRudderStorage=False,
        roleBasedAuth=False, iamRoleARN="", oneTrustCookieCategories=[],
    )  # fmt: skip
    assert parsed.enableSSE and parsed.folder == "" and parsed.endpoint_url is None


def test_aws_itself_by_default_and_a_compatible_store_by_endpoint() -> None:
    aws = settings(region="eu-west-1")
    assert (aws.endpoint_url, aws.region_name, aws.path_style) == (None, "eu-west-1", False)
    assert settings().region_name is None  # the host's AWS config decides
    minio = settings(endpoint="http://127.0.0.1:9000/")
    assert (minio.endpoint_url, minio.region_name, minio.path_style) == (
        "http://127.0.0.1:9000", "us-east-1", True
    )  # fmt: skip
    assert not settings(endpoint="https://s3.example.com", s3ForcePathStyle=False).path_style
    assert settings(s3ForcePathStyle=True).path_style


def test_rudderstack_spellings_endpoint_without_scheme_and_region_hint() -> None:
    assert settings(endPoint="https://store.example:9000").endpoint_url == (
        "https://store.example:9000"
    )
    assert settings(endPoint="minio:9000").endpoint_url == "https://minio:9000"
    assert settings(endPoint="minio:9000", disableSSL=True).endpoint_url == "http://minio:9000"
    same = settings(endpoint="http://minio:9000", endPoint="http://minio:9000")
    assert same.endpoint_url == "http://minio:9000"
    assert settings(regionHint="ap-south-1").region_name == "ap-south-1"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", f"{SOURCE}/2026-03-01/23/42.json.gz"),
        ("/", f"{SOURCE}/2026-03-01/23/42.json.gz"),
        ("logs", f"logs/{SOURCE}/2026-03-01/23/42.json.gz"),
        ("logs/", f"logs/{SOURCE}/2026-03-01/23/42.json.gz"),
        ("/team/events//", f"team/events/{SOURCE}/2026-03-01/23/42.json.gz"),
    ],
)
def test_object_key_layout(prefix: str, expected: str) -> None:
    at = datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)
    assert S3.files is not None
    assert S3.files.key(settings(prefix=prefix), SOURCE, at, 42) == expected


def test_object_keys_follow_the_utc_hour_of_the_first_job() -> None:
    assert S3.files is not None
    key, plain = S3.files.key, settings()
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert key(plain, SOURCE, midnight, 7) == f"{SOURCE}/2026-03-02/00/7.json.gz"
    before = midnight - timedelta(microseconds=1)
    assert key(plain, SOURCE, before, 7) == f"{SOURCE}/2026-03-01/23/7.json.gz"
    paris = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert key(plain, SOURCE, paris, 7) == f"{SOURCE}/2026-03-01/23/7.json.gz"
    naive = datetime(2026, 12, 31, 23, 0)  # taken as UTC
    assert key(plain, SOURCE, naive, 9) == f"{SOURCE}/2026-12-31/23/9.json.gz"
    # The same first job names the same object: an upload repeated after a crash replaces it.
    assert key(plain, SOURCE, midnight, 7) == key(plain, SOURCE, midnight, 7)


def test_map_passes_the_event_through_exactly() -> None:
    text = (
        b'{"type":"track","event":"Order Completed","messageId":"m-1","properties":'
        b'{"total":19.990,"tax":1e-3,"items":[{"sku":"a","qty":2}],"note":null,"ok":true},'
        b'"context":{"ip":"203.0.113.9"},"anything":{"nested":[1,2.50,"x"]}}'
    )
    event = codec.decode(text)
    [request] = S3.map(event, settings(prefix="raw/"), NOW)
    assert (request.method, request.url) == ("PUT", "s3://events/raw")
    assert request.body is event
    assert codec.encode(request.body) == text
    [root] = S3.map({"type": "alias"}, settings(), NOW)
    assert root.url == "s3://events/" and root.body == {"type": "alias"}


def test_every_call_type_is_taken() -> None:
    assert {"track", "identify", "page", "screen", "group", "alias"} <= S3.supported_types


def test_registered_as_a_batch_destination_with_its_secret() -> None:
    assert TYPES["s3"] is S3 and TYPES["s3"].required == ("bucketName",)
    assert S3.files is not None and S3.secret_keys == ("accessKey",)
    assert S3.secrets({"bucketName": "b", "accessKeyID": KEY_ID, "accessKey": SECRET}) == [SECRET]


def test_previews_mask_the_secret_key() -> None:
    config = {"bucketName": "events", "accessKeyID": KEY_ID, "accessKey": SECRET}
    event = {"type": "track", "event": "Leak", "properties": {"pasted": SECRET}}
    [request] = preview.of_type("s3", config, event, NOW)
    assert SECRET not in codec.encode(request).decode()
    assert request.body["properties"]["pasted"] == "****"


def refusal(status: int, code: str, message: str = "", **extra: Any) -> ClientError:
    error = {"Code": code, "Message": message, **extra} if code or message else {}
    return ClientError(
        {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("answer", "verdict", "error"),
    [
        (
            refusal(403, "AccessDenied", "Access Denied"),
            Verdict.ABORT,
            "AccessDenied: Access Denied",
        ),
        (
            refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist"),
            Verdict.ABORT,
            "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist",
        ),
        (
            refusal(404, "NoSuchBucket", "The specified bucket does not exist", BucketName="b"),
            Verdict.ABORT,
            "NoSuchBucket: The specified bucket does not exist",
        ),
        (refusal(400, "InvalidDigest", ""), Verdict.ABORT, "InvalidDigest"),
        (refusal(301, "PermanentRedirect", "Use the right endpoint"), Verdict.ABORT, None),
        (refusal(503, "SlowDown", "Please reduce your request rate."), Verdict.RETRY, None),
        (refusal(500, "InternalError", "We encountered an internal error"), Verdict.RETRY, None),
        (refusal(400, "RequestTimeout", "Your socket connection timed out"), Verdict.RETRY, None),
        (refusal(403, "RequestTimeTooSkewed", "The difference is too large"), Verdict.RETRY, None),
        (refusal(400, "ExpiredToken", "The provided token has expired."), Verdict.RETRY, None),
        (refusal(429, "TooManyRequests", ""), Verdict.RETRY, None),
        (refusal(502, "502", "Bad Gateway"), Verdict.RETRY, "HTTP 502: Bad Gateway"),
        (refusal(403, "403", "Forbidden"), Verdict.ABORT, "HTTP 403: Forbidden"),
        (refusal(404, "", ""), Verdict.ABORT, "HTTP 404"),
        (
            ClientError({}, "PutObject"),
            Verdict.RETRY,
            "the storage service answered without an error code",
        ),
    ],
)
def test_the_storage_service_answer_is_judged_in_its_own_words(
    answer: ClientError, verdict: Verdict, error: str | None
) -> None:
    stored = _answer(answer)
    assert stored.verdict is verdict
    if error is not None:
        assert stored.error == error
    status = answer.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert stored.status == status
