"""Throughput and latency benchmarks of the relay, each beside a raw gRPC + SQLite baseline.

Run from the repository root: ``python -m bench [drain|relay|latency|all]`` (see README.md).
"""
