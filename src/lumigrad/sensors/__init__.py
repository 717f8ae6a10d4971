"""lumigrad.sensors"""
