"""The instruction language: the attribute bank and its matcher, region priors, and the CIELAB
measures that say whether an image moved the way an attribute asks. Versioned by
:data:`VOCAB_VERSION`: anything trained or scored against it records the version.

Imports only :mod:`iretouch_bench.core`.
"""

from .attributes import ATTRIBUTES, VOCAB_VERSION, match_attributes

__all__ = ["ATTRIBUTES", "VOCAB_VERSION", "match_attributes"]
