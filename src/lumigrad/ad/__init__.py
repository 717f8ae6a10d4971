"""lumigrad.ad"""
