"""schemes layer of the USaPP reference implementation (see DESIGN.md)."""
