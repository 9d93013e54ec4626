"""Inspector: industrial visual defect inspection with FastSAM."""

__version__ = "0.1.0"

__all__ = ["__version__"]
