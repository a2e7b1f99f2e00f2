"""Deciding commands off the event loop (pool.py), in worker processes (worker.py)."""
