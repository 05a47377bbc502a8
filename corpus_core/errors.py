"""Errors by kind: a broken config is raised before work starts; bad input is data (a
manifest row with a reason), never an exception."""


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and value."""


class BuildFailed(RuntimeError):
    """The build ran but its result cannot be trusted (every source failed, nothing could be
    read, a stage raised on too many files); the message lists why. Parts stay in _work."""
