"""BSDF plugins: one small module each. Importing this package registers them."""
