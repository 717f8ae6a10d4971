"""lumigrad.geometry"""
