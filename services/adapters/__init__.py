"""Adapters: the only code that speaks HTTP (httpx) to the outside systems."""
