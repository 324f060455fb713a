"""Who is calling the approval API: bearer tokens mapped to user names.

Tokens come from ``DIAGNOSE_API_TOKENS`` (``alice:token1,bob:token2``) and
``DIAGNOSE_API_TOKENS_FILE`` (one ``user:token`` a line). Every lookup compares against every
token in constant time, so the time taken says nothing about which prefix matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from diagnose.domain import errors
from diagnose.settings import Settings


def parse_pairs(text: str, *, where: str) -> dict[str, str]:
    """``user:token`` pairs, separated by commas or newlines; ``#`` starts a comment line."""
    users: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        user, sep, token = item.partition(":")
        if not sep or not user.strip() or len(token.strip()) < 8:
            raise errors.ConfigurationError(
                f"{where}: each entry must be user:token with a token of 8+ characters"
            )
        users[token.strip()] = user.strip()
    return users


def load_tokens(settings: Settings) -> dict[str, str]:
    """Token → user name, from the environment and the tokens file."""
    tokens: dict[str, str] = {}
    if settings.api_tokens is not None:
        tokens |= parse_pairs(settings.api_tokens.get_secret_value(), where="DIAGNOSE_API_TOKENS")
    if settings.api_tokens_file is not None:
        try:
            text = settings.api_tokens_file.read_text()
        except OSError as exc:
            raise errors.ConfigurationError(
                f"DIAGNOSE_API_TOKENS_FILE: cannot read {settings.api_tokens_file}: {exc}"
            ) from exc
        tokens |= parse_pairs(text, where="DIAGNOSE_API_TOKENS_FILE")
    return tokens


def user_for(token: str, *, tokens: Mapping[str, str]) -> str | None:
    """The user a token belongs to, or None."""
    found = None
    for known, user in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found
