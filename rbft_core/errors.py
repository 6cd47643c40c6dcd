"""One exception family for everything a user can hit.

Messages name the thing and the fix: "video X has no video stream; re-encode or remove it".
The UI shows them verbatim (``raise gr.Error(str(e))``); the CLI prints them and exits non-zero.
"""

__all__ = ["RbftError", "ConfigError", "DataError", "ModelError", "JobError", "ConflictError"]


class RbftError(Exception):
    """Base class: an error the user can act on."""


class ConfigError(RbftError):
    """A setting or argument is invalid (names the field and the accepted range)."""


class DataError(RbftError):
    """A video, manifest or dataset cannot be used as given."""


class ModelError(RbftError):
    """A model cannot be found, loaded or used for this task."""


class JobError(RbftError):
    """A background job cannot be started, found or stopped."""


class ConflictError(RbftError):
    """A save was refused because someone saved a newer version first."""
