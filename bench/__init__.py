"""Benchmarks of the USaPP reference implementation, run through ``usapp bench``."""
