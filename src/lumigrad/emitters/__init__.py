"""Emitter plugins (area, point, directional, constant, envmap)."""
