"""Lowest layer: atomic files and hashing (io), peak memory (memory); imports nothing from hnerv_lib."""
