"""Errors a user can act on. Each message names the file, key or path at fault and what would fix it."""


class MissionGymError(Exception):
    """Base class for every error Mission Gym reports to a user (CLIs print the message, no traceback)."""


class ConfigError(MissionGymError, ValueError):
    """A config file is missing, malformed or holds a bad value."""


class RunNameError(MissionGymError, ValueError):
    """A run or branch name that could leave `runs/` or is otherwise unusable."""


class CheckpointNotFoundError(MissionGymError, FileNotFoundError):
    """A checkpoint path or run name that resolves to no checkpoint."""


class CheckpointIntegrityError(MissionGymError):
    """A checkpoint whose SHA-256 no longer matches the one its run recorded."""


class CompatibilityError(MissionGymError):
    """A parent checkpoint whose observation or action space differs from the current config's."""


class RunRecordError(MissionGymError):
    """A run folder whose run.json is missing, unreadable or invalid."""


class UsageError(MissionGymError, ValueError):
    """A command line that names an unknown flag, misses a required one or gives a value of the wrong kind."""
