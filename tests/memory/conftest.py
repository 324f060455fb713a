"""The bundled scenarios' metrics are generated (not committed): make them when missing."""

from tests.e2e.conftest import _scenario_metrics  # noqa: F401  (an autouse session fixture)
