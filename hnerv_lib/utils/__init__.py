"""Lowest layer: atomic files and hashing (io), peak memory (memory), precision choice (precision)."""
