"""Image input/output."""

from .images import image_bit_depth, read_image, to_uint8, write_image

__all__ = ["read_image", "write_image", "to_uint8", "image_bit_depth"]
