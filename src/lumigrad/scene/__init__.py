"""lumigrad.scene"""
