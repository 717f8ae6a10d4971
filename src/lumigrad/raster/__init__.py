"""lumigrad.raster"""
