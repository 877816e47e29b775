"""The lab's S3 endpoint and application stand-in behave as the roles and tests built on them expect."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from dbops_it import ROOT, lab, playbook

boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def endpoints(request):
    prefix = "dbops-it-endpoints"
    addresses = json.loads(lab("up", "--prefix", prefix, "--hosts", "s3,app"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", prefix))
    playbook("lab/provision.yml", prefix, "--limit", "app")
    return prefix, addresses


def s3_client(address):
    from botocore.config import Config

    return boto3.client("s3", endpoint_url="http://%s:9000" % address, region_name="us-east-1",
                        aws_access_key_id="lab", aws_secret_access_key="lab",
                        config=Config(retries={"max_attempts": 1}))


def test_s3_multipart_upload_round_trip(endpoints):
    client = s3_client(endpoints[1]["s3"])
    client.create_bucket(Bucket="it-endpoint")
    part = os.urandom(5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket="it-endpoint", Key="blob", ChecksumAlgorithm="SHA256")
    parts = []
    for number in (1, 2):
        answer = client.upload_part(Bucket="it-endpoint", Key="blob", UploadId=upload["UploadId"],
                                    PartNumber=number, Body=part, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]})
    client.complete_multipart_upload(Bucket="it-endpoint", Key="blob", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})
    body = client.get_object(Bucket="it-endpoint", Key="blob")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(part * 2).hexdigest()
    assert client.list_multipart_uploads(Bucket="it-endpoint").get("Uploads", []) == []


def test_s3_endpoint_reachable_by_name_from_lab_hosts(endpoints):
    prefix = endpoints[0]
    probe = "import urllib.request; print(urllib.request.urlopen('http://s3:9000/', timeout=5).status)"
    out = subprocess.run(["docker", "exec", prefix + "-app", "python3", "-c", probe],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "200"


def test_app_health_reports_its_settings_and_503_without_its_primary(endpoints):
    # This lab has no pg1: the application answers 503 and still says what it loaded
    # (tests/integration/test_lab_app.py covers the application with its primary).
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen("http://%s:8000/health" % endpoints[1]["app"], timeout=10)
    assert answer.value.code == 503
    health = json.load(answer.value)
    assert health["status"] == "fail" and health["checks"]["database"]["status"] == "fail"
    assert health["primary_host"] == "pg1"
    assert health["started_at"] > 0
