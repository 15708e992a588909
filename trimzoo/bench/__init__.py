"""Benchmarks: parameters, FLOPs, latency, throughput, reports."""
