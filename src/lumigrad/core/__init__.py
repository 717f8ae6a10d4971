"""Shared kernel-side building blocks: frames, warps, interactions."""
