"""One set of secret patterns: whatever the way out (a model's prompt, a probe's result, a
report), every well-known secret format is masked, and ordinary incident text is not."""

from __future__ import annotations

import pytest

from diagnose.domain import database, reasoning, redaction
from sandbox import redacting

# Built from parts so no complete key sits in the source.
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
SECRETS = [
    (f"charge failed with {STRIPE}", STRIPE),
    ("sk_" + "test_" + "51HxYzAbCdEfGhIjKlMn", "51HxYzAbCdEfGhIjKlMn"),
    ("restricted rk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOp", "51HxYzAbCdEfGhIjKlMnOp"),
    ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrst"),
    ("gho_" + "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrst"),
    ("ghs_" + "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrst"),
    ("github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop", "11ABCDEFG0123456789"),
    ("xoxb-" + "1234567890-abcdefghij", "1234567890-abcdefghij"),
    ("xoxp-" + "1234567890-abcdefghij", "1234567890-abcdefghij"),
    ("xapp-" + "1-A0123456789-0123456789-abcdef", "A0123456789-0123456789"),
    ("maps AIza" + "SyA-abcdefghijklmnopqrstuvwxyz01234", "SyA-abcdefghijklmnop"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", "MHcCAQEE"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "b3BlbnNzaC1rZXk"),
    ("redis://default:s3cr3tpass@cache:6379/0", "s3cr3tpass"),
    ("password=hunter2 retry", "hunter2"),
    ('{"client_secret": "abc123xyz"}', "abc123xyz"),
    ("token: 0123abcd-ffff", "0123abcd-ffff"),
    ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_every_known_secret_format_is_masked_on_every_way_out(text: str, secret: str) -> None:
    """The model's fence, probe results and reports share one pattern set."""
    assert secret not in redaction.redact(text)
    assert secret not in reasoning.redact(text)
    assert secret not in redacting.redact_text(text)[0]


def test_the_count_says_how_many_were_masked() -> None:
    """Two secrets in one line are counted as two."""
    text, count = redaction.redact_counted(f"{STRIPE} and password=x")
    assert count == 2 and text.count(redaction.REDACTED) == 2


@pytest.mark.parametrize(
    "text",
    [
        "checkout 5xx rate rose from 0.1/s to 14/s at 03:11 after revision 14",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 spent 2.1 s in SELECT on orders",
        "deployment/checkout@14 set DB_POOL_SIZE from 20 to 2",
        "skip_live_check=false in the rollout",
        "passenger_count=3 shipping=express ping=30ms",
    ],
)
def test_incident_text_is_left_alone(text: str) -> None:
    """Ids, numbers, revisions and trace ids are evidence, not secrets."""
    assert redaction.redact(text) == text


# Names each of the two old pattern sets knew alone: the probe-column list (auth_key, otp,
# card_number, pin, ssn) and the free-text list (pwd, session_id, cookie, credentials).
ONCE_ONE_SIDED = [
    "auth_key",
    "otp",
    "card_number",
    "user_pin",
    "ssn",
    "pwd",
    "session_id",
    "cookie",
]

# Names of keys and headers that are secrets although no older word covered them.
KEYS_AND_HEADERS = [
    "STRIPE_KEY",
    "SIGNING_KEY",
    "encryption_key",
    "ssh-key",
    "webhookKey",
    "AUTHORIZATION",
    "x_authorization",
]


@pytest.mark.parametrize("name", KEYS_AND_HEADERS)
def test_key_and_header_names_are_secret(name: str) -> None:
    value = "q7Zp20x"
    assert redaction.is_secret_name(name)
    assert value not in redaction.redact(f"{name}={value} after retry")
    table = redacting.redact_table([name], [[value]], limits=database.Limits())
    assert table.rows == [[redacting.MASK]]


@pytest.mark.parametrize(
    "name", ["primary_key", "foreign_key", "sort_key", "cache_key", "key_id", "keyspace", "monkey"]
)
def test_structural_key_names_are_not_secret(name: str) -> None:
    """A key that orders or finds rows is evidence: its value stays readable."""
    assert not redaction.is_secret_name(name)
    assert redaction.redact(f"{name}=orders_pk") == f"{name}=orders_pk"


@pytest.mark.parametrize("name", ONCE_ONE_SIDED)
def test_a_secret_name_is_masked_in_text_and_as_a_probe_column(name: str) -> None:
    """One list of secret names: a name is masked in free text and as a column alike."""
    value = "q7Zp20x"
    assert value not in redaction.redact(f"{name}={value} after retry")
    assert value not in redacting.redact_text(f'{{"{name}": "{value}"}}')[0]
    table = redacting.redact_table([name], [[value]], limits=database.Limits())
    assert table.rows == [[redacting.MASK]] and table.redacted == 1
