"""The two kinds of error (design: style 7).

A ``FatalError`` stops the command with exit code 2 and one line on stderr (no model, bad config).
Per-item problems (a corrupt file) are not exceptions that escape a loop: they are reported,
audited as ``error`` and the loop goes on.
"""


class VeilError(Exception):
    """Base of Veil's own errors; ``str(err)`` is the one line shown to the user."""


class FatalError(VeilError):
    """Veil cannot run at all: exit code 2."""


class ConfigError(FatalError):
    """The config file is unreadable or invalid; the message names the key."""


class ModelError(FatalError):
    """The model file is missing, truncated, foreign or does not match its sidecar."""


class AcceleratorError(FatalError):
    """An accelerator was demanded (``accelerator = "gpu"``) and none can be used."""


# Exit codes of every command (INTERFACES.md).
EXIT_OK = 0
EXIT_FLAGGED = 1
EXIT_FATAL = 2
EXIT_UNREADABLE = 3
