"""Benchmarks of the tasker engine: ``python -m benchmarks run --help``; see README.md here."""
