"""Throughput and latency benchmarks of the relay, each beside a raw gRPC + SQLite baseline;
the district simulated on PostgreSQL and the hub's read side, each beside baselines of its own.

Run from the repository root: ``python -m bench [drain|relay|latency|all|district|readside]``
(see README.md).
"""
