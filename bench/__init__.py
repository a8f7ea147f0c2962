"""Benchmark scripts: `python -m bench.<name>` from the repository root (docs/bench.md)."""
