"""PagerDuty V3 signatures: HMAC-SHA256 of the raw body, any v1 signature may match."""

from __future__ import annotations

import pytest

from diagnose.server import signing

BODY = b'{"event": {"id": "x"}}'


def test_a_signature_made_with_our_secret_verifies() -> None:
    header = signing.sign(BODY, secret="s3cret")
    assert signing.verify(BODY, header=header, secrets=["s3cret"])


def test_a_signature_made_with_another_secret_does_not() -> None:
    header = signing.sign(BODY, secret="other")
    assert not signing.verify(BODY, header=header, secrets=["s3cret"])


def test_during_rotation_any_of_several_signatures_may_match() -> None:
    header = ",".join([signing.sign(BODY, secret="old"), signing.sign(BODY, secret="new")])
    assert signing.verify(BODY, header=header, secrets=["new"])
    assert signing.verify(BODY, header=header, secrets=["old"])


def test_a_changed_body_fails_verification() -> None:
    header = signing.sign(BODY, secret="s3cret")
    assert not signing.verify(BODY + b" ", header=header, secrets=["s3cret"])


@pytest.mark.parametrize("header", [None, "", "v2=abc", "v1=nothex", "sha256=" + "a" * 64])
def test_a_header_with_no_v1_signature_is_malformed(header: str | None) -> None:
    with pytest.raises(signing.MalformedSignatureError):
        signing.verify(BODY, header=header, secrets=["s3cret"])
