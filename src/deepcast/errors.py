"""Errors a user can cause. The CLI turns each into one line and exit code 2.

Internal bugs are not wrapped: they raise normally, with a traceback.
"""


class DeepcastError(Exception):
    """Base class of every error caused by user input, data or files."""


class DataError(DeepcastError, ValueError):
    """The data is malformed: missing column, NaN, text in a numeric column, bad timestamps..."""


class ModelFileError(DeepcastError):
    """A saved forecaster directory is missing, incomplete or corrupt."""


class NotFittedError(DeepcastError, AttributeError):
    """A method that needs a fitted forecaster was called before `fit`."""


class ConfigError(DeepcastError, ValueError):
    """An argument or configuration value (CLI flag, search space, option) is invalid."""


class MissingExtraError(DeepcastError, ImportError):
    """An optional package is needed and not installed; the message says what to install."""
