"""Exceptions whose message is the one line a user sees (file named, problem stated)."""


class BenchError(Exception):
    """Base class: the CLI prints ``str(err)`` as one line and exits non-zero."""


class ImageReadError(BenchError):
    """An image file could not be read; the message names the file."""


class DatasetError(BenchError):
    """A dataset spec, manifest or folder is malformed; the message names file and row."""


class ModelError(BenchError):
    """A model cannot be found, loaded or run."""


class WeightsError(BenchError):
    """A weight file is missing or fails verification; the message says how to get it."""
