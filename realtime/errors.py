"""The one exception hierarchy of dreamcam: every error a user can cause says what to do about it."""


class DreamcamError(Exception):
    """Base of every error dreamcam reports to the user as one line (CLI exit status 2)."""


class ConfigError(DreamcamError):
    """A bad option or parameter value (size string, step count, layer spec...)."""


class ModelError(DreamcamError):
    """An unknown model or layer, or weights that cannot be had or are not what they claim."""


class SourceError(DreamcamError):
    """A frame source that cannot be opened or read (missing file, corrupt video, absent camera)."""


class BackendError(DreamcamError):
    """A compute backend that is unavailable on this machine or failed to build."""
