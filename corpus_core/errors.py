"""Errors by kind: a broken config is raised before work starts; bad input is data (a
manifest row with a reason), never an exception."""


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and value."""
