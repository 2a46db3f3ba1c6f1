"""sqd-suite: sample-based quantum diagonalization for quantum chemistry."""

__version__ = "0.1.0"
