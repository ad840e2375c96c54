"""python -m edge_infer: the same as the edge-infer command."""

from .cli import run

run()
