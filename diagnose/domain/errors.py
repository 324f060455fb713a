"""Errors the agent raises on purpose.

The tree::

    DiagnoseError                 anything we raise deliberately
    ├── ConfigurationError        settings, scenarios or playbooks that cannot be used as given
    │   └── ScenarioError         a scenario folder that does not follow SCENARIOS.md
    ├── SourceError               an outside system did not answer as it should
    │   ├── SourceUnavailable     refused, timed out, DNS failed: try again or fix the address
    │   └── SourceRejected        it answered with an error (bad query, 4xx): fix the request
    ├── LabError                  the incident lab could not stand a server up
    │   └── MissingTool           a binary the lab needs is not installed (says how to install it)
    └── RunNotFound               no paused or finished run has that id

Connectors translate foreign exceptions into ``SourceError`` at the boundary and chain them
(``raise SourceUnavailable(...) from exc``); the graph turns them into evidence with a status.
Our own bugs are not translated: they crash loudly.
"""


class DiagnoseError(Exception):
    """Base of every error the agent raises deliberately."""


class ConfigurationError(DiagnoseError):
    """Settings, scenarios or playbooks that cannot be used as given."""


class ScenarioError(ConfigurationError):
    """A scenario folder that does not follow the scenario format."""


class SourceError(DiagnoseError):
    """An outside system did not answer as it should."""


class SourceUnavailable(SourceError):
    """The system could not be reached, or did not answer in time."""


class SourceRejected(SourceError):
    """The system answered with an error: the request itself needs fixing."""


class LabError(DiagnoseError):
    """The incident lab could not stand a server up or tear it down."""


class MissingTool(LabError):
    """A program the lab needs is not installed; the message says how to install it."""


class RunNotFound(DiagnoseError):
    """No run with that id is stored in the checkpoint database."""
