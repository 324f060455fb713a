"""The endpoints a workload's environment names are kept (where it connects), with the one list
of secret names deciding what is never kept, and credentials cut out of URLs."""

from __future__ import annotations

from connectors.kubernetes import _translating


def test_endpoints_are_kept_secrets_never_and_credentials_cut() -> None:
    """An auth service's URL is an endpoint, a password is never kept whatever it looks like,
    and a database URL keeps its host but not its user and password."""
    spec = {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "env": [
                            {"name": "AUTH_SERVICE_URL", "value": "http://auth.shop:8080"},
                            {"name": "DB_PASSWORD", "value": "postgres://db.shop:5432"},
                            {"name": "API_TOKEN_URL", "value": "https://id.example/token"},
                            {
                                "name": "DATABASE_URL",
                                "value": "postgres://app:hunter2@orders-db:5432/shop",
                            },
                            {"name": "LOG_LEVEL", "value": "debug"},
                        ],
                    }
                ]
            }
        }
    }
    kept = _translating._endpoint_env(spec)
    assert kept == {
        "AUTH_SERVICE_URL": "http://auth.shop:8080",
        "DATABASE_URL": "postgres://orders-db:5432/shop",
    }
