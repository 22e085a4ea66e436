"""The boto3 edge without a server: URLs, endpoint variables, boto3 optional."""

from __future__ import annotations

import subprocess
import sys

import pytest

from summaryd.daemon.s3store import (
    RetryPolicy,
    S3Url,
    S3UrlError,
    endpoint_from_env,
    parse_s3_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://my-bucket/experiments/run1", S3Url("my-bucket", "experiments/run1")),
        ("s3://my-bucket/experiments/run1/", S3Url("my-bucket", "experiments/run1")),
        ("s3://b.c-1", S3Url("b.c-1", "")),
        ("s3://abc/", S3Url("abc", "")),
    ],
)
def test_parse(url: str, expected: S3Url) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["s3://ab/run", "s3://My-Bucket/run", "s3://-abc/run", "gs://abc/run", "s3://abc/a//b", ""],
)
def test_parse_refuses(url: str) -> None:
    with pytest.raises(S3UrlError) as e:
        parse_s3_url(url)
    assert isinstance(e.value, ValueError)
    assert repr(url) in str(e.value)


def test_str() -> None:
    assert str(S3Url("abc", "x/y")) == "s3://abc/x/y"
    assert str(S3Url("abc", "")) == "s3://abc"


def test_endpoint_precedence() -> None:
    assert endpoint_from_env({}) is None
    assert endpoint_from_env({"S3_ENDPOINT": "http://a"}) == "http://a"
    assert endpoint_from_env({"S3_ENDPOINT": "http://a", "AWS_ENDPOINT_URL": "http://b"}) == (
        "http://b"
    )
    env = {"AWS_ENDPOINT_URL_S3": "http://c", "AWS_ENDPOINT_URL": "http://b"}
    assert endpoint_from_env(env) == "http://c"


def test_backoff_grows_and_caps() -> None:
    p = RetryPolicy(attempts=5, first_delay=0.5, max_delay=3.0)
    assert [p.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_modules_import_without_boto3_and_url_use_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None\n"
        "import summaryd.daemon.s3store as s, summaryd.daemon.spool, summaryd.daemon.s3layout\n"
        "try:\n"
        "    s.S3Store('s3://bucket/run')\n"
        "except s.S3ExtraMissingError as e:\n"
        "    assert isinstance(e, ImportError)\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install summaryd[s3]" in out
