"""Texture plugins (constant, bitmap, checkerboard). Importing this package registers them."""
from .base import Texture
from .bitmap import BitmapTexture
from .checkerboard import CheckerboardTexture
from .constant import ConstantTexture, as_texture, texture_mean, texture_parameters, to_color

__all__ = ["Texture", "ConstantTexture", "BitmapTexture", "CheckerboardTexture",
           "as_texture", "texture_mean", "texture_parameters", "to_color"]
