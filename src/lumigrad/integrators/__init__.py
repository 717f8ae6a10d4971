"""lumigrad.integrators"""
