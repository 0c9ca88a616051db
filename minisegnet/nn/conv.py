"""(being written: see the issues)"""
__all__ = []
