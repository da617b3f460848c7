"""schemes layer of the USaPP reference implementation (see docs/architecture.md section 1)."""
