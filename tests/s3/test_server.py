"""The test server itself behaves as AWS does where our code depends on it."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest

from ..s3server import REGION, WeedServer

pytestmark = pytest.mark.s3


def test_round_trip(s3server: WeedServer, s3_prefix: str) -> None:
    c = s3server.client()
    c.put_object(Bucket=s3server.bucket, Key=f"{s3_prefix}/a", Body=b"hello")
    assert c.get_object(Bucket=s3server.bucket, Key=f"{s3_prefix}/a")["Body"].read() == b"hello"


def test_wrong_key_is_refused(s3server: WeedServer, s3_prefix: str) -> None:
    # Without -s3.config weed accepts any signature; ours must not.
    bad = boto3.client(
        "s3",
        endpoint_url=s3server.endpoint,
        aws_access_key_id=s3server.access_key,
        aws_secret_access_key="wrong",
        region_name=REGION,
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.put_object(Bucket=s3server.bucket, Key=f"{s3_prefix}/b", Body=b"x")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_missing_bucket_is_not_created(s3server: WeedServer) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3server.client().put_object(Bucket="no-such-bucket", Key="k", Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def test_conditional_create(s3server: WeedServer, s3_prefix: str) -> None:
    # The layout's sequence names rely on PUT If-None-Match: * (412 on an existing key).
    c = s3server.client()
    key = f"{s3_prefix}/once"
    c.put_object(Bucket=s3server.bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_object(Bucket=s3server.bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert c.get_object(Bucket=s3server.bucket, Key=key)["Body"].read() == b"first"
