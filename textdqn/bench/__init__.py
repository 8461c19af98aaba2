"""Benchmarks: each prints one table with the peer measured in the same run."""
