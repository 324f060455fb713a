"""The repositories setting: repository URLs mapped to local clones."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose.domain import errors
from diagnose.settings import Settings


def test_repositories_map_urls_to_clone_paths() -> None:
    """DIAGNOSE_REPOSITORIES reads url=path pairs into the code section."""
    settings = Settings.from_env(
        {"DIAGNOSE_REPOSITORIES": "https://git.shop.example/shop/a=/srv/git/a,git@h:t/b=/srv/b"}
    )
    assert settings.code.repositories == {
        "https://git.shop.example/shop/a": Path("/srv/git/a"),
        "git@h:t/b": Path("/srv/b"),
    }


def test_a_malformed_repositories_value_names_the_variable() -> None:
    """A pair without '=' is refused with the variable's name."""
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_REPOSITORIES"):
        Settings.from_env({"DIAGNOSE_REPOSITORIES": "https://git.shop.example/shop/a"})
