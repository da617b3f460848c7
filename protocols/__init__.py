"""USaPP reference implementation: smart-meter security and privacy protocols.

Layers (see docs/architecture.md section 1): ``system`` -> protocol modules -> ``schemes`` -> ``primitives``;
``errors`` may be imported from anywhere.
"""

__version__ = "0.1.0"
