"""Image input/output."""

from .images import read_image, write_image, to_uint8

__all__ = ["read_image", "write_image", "to_uint8"]
