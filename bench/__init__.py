"""Benchmarks of the app, and the synthetic drawings they and the tests share."""
