"""SpecOps runtime: the in-pod task agent, engine adapters and the reference backend."""

__version__ = "0.1.0"
