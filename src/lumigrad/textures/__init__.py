"""Texture plugins (constant, bitmap, checkerboard)."""
