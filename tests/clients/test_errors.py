"""Requests that s3seal must reject, and what it must leave upstream."""

import base64
import hashlib
import io

import botocore.exceptions
import pytest

import harness


def client_error(call) -> dict:
    """Run CALL, which must raise ClientError, and return its code and HTTP status."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return {"code": response["Error"].get("Code"), "status": response["ResponseMetadata"]["HTTPStatusCode"]}


def test_wrong_secret_list(stack, enc_bucket):
    client = harness.s3_client(stack.endpoint, stack.access_key_id, "wrong-secret")

    error = client_error(lambda: client.list_objects_v2(Bucket=enc_bucket))

    assert error == {"code": "SignatureDoesNotMatch", "status": 403}


def test_wrong_secret_put(stack, enc_bucket, upstream):
    client = harness.s3_client(stack.endpoint, stack.access_key_id, "wrong-secret")

    error = client_error(lambda: client.put_object(Bucket=enc_bucket, Key="forged", Body=b"forged"))

    assert error == {"code": "SignatureDoesNotMatch", "status": 403}
    assert not upstream.exists(enc_bucket, "forged")


def test_wrong_secret_tls_put(stack, enc_bucket, upstream):
    # aws-chunked body with a trailing checksum, signed with the wrong secret.
    client = harness.s3_client(stack.tls_endpoint, stack.access_key_id, "wrong-secret", verify=str(stack.cert))

    error = client_error(lambda: client.put_object(Bucket=enc_bucket, Key="forged", Body=b"forged"))

    assert error == {"code": "SignatureDoesNotMatch", "status": 403}
    assert not upstream.exists(enc_bucket, "forged")


def test_unknown_access_key(stack, enc_bucket):
    client = harness.s3_client(stack.endpoint, "AKIDUNKNOWNCLIENT999", stack.secret_access_key)

    error = client_error(lambda: client.list_objects_v2(Bucket=enc_bucket))

    assert error == {"code": "InvalidAccessKeyId", "status": 403}


@pytest.mark.parametrize("client_fixture", ["s3_http", "s3_tls"])
def test_bad_content_md5(request, enc_bucket, upstream, client_fixture):
    client = request.getfixturevalue(client_fixture)
    wrong_md5 = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()

    error = client_error(
        lambda: client.put_object(Bucket=enc_bucket, Key="digest.bin", Body=b"the real bytes", ContentMD5=wrong_md5)
    )

    assert error == {"code": "BadDigest", "status": 400}
    assert not upstream.exists(enc_bucket, "digest.bin")


def test_relayed_error_id_in_log(stack, s3_http, enc_bucket):
    # moto's NoSuchKey document names moto's request id, which boto3 reports.
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3_http.get_object(Bucket=enc_bucket, Key="missing-for-request-id")
    response = raised.value.response
    assert response["Error"]["Code"] == "NoSuchKey"
    reported = response["ResponseMetadata"]["RequestId"]
    assert reported

    log = (stack.workdir / "s3seal.log").read_text()
    lines = [line for line in log.splitlines() if reported in line]
    assert len(lines) == 1, f"request id {reported} is in {len(lines)} log lines"
    assert "status=404" in lines[0], lines[0]


@pytest.mark.parametrize("bucket_kind", ["enc", "plain"])
def test_rejected_upload_keeps_connection_in_step(s3_http, make_bucket, bucket_kind):
    # botocore sends "Expect: 100-continue" with a file body and sends no
    # body when a final status comes first. The valid upload that follows
    # on the same pool of connections must not see the rejected one.
    bucket = make_bucket(bucket_kind)
    failures = []
    for round_number in range(100):
        error = client_error(
            lambda: s3_http.put_object(Bucket=bucket, Key="a/../b", Body=io.BytesIO(b"xxxx"))
        )
        assert error["code"] == "InvalidArgument", error
        try:
            s3_http.put_object(Bucket=bucket, Key="ok", Body=io.BytesIO(b"hello"))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as caught:
            failures.append(f"round {round_number}: {caught!r}")

    assert failures == []
    assert s3_http.get_object(Bucket=bucket, Key="ok")["Body"].read() == b"hello"


def test_copy_source_rejected_upstream_is_client_error(s3_http, enc_bucket):
    # moto 5.2 returns 400 for a read of versionId=null in an unversioned
    # bucket, where S3 serves the object. Either way the client must not
    # get a gateway error.
    s3_http.put_object(Bucket=enc_bucket, Key="src", Body=b"data")
    source = {"Bucket": enc_bucket, "Key": "src", "VersionId": "null"}
    try:
        s3_http.copy_object(Bucket=enc_bucket, Key="dst", CopySource=source)
    except botocore.exceptions.ClientError as caught:
        error = caught.response["Error"].get("Code"), caught.response["ResponseMetadata"]["HTTPStatusCode"]
        assert error == ("InvalidArgument", 400)
    else:
        assert s3_http.get_object(Bucket=enc_bucket, Key="dst")["Body"].read() == b"data"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        # moto stores the body of a bucket POST as a form upload.
        ("POST", "?key=leak"),
        ("POST", "?uploads&key=leak"),
        # Object PUTs with a sub-resource that names no operation.
        ("PUT", "/leak?uploads"),
        ("PUT", "/leak?restore"),
    ],
)
def test_request_without_operation_stores_nothing(stack, upstream, enc_bucket, method, target):
    url = f"{stack.endpoint}/{enc_bucket}{target}"
    response = harness.signed_request(
        method,
        url,
        stack.access_key_id,
        stack.secret_access_key,
        body=b"PLAINTEXT",
        headers={"Content-Type": "application/octet-stream"},
    )

    assert response.status_code in (405, 501), response.text
    assert not upstream.exists(enc_bucket, "leak")
