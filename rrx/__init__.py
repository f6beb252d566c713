"""rrx: right-for-the-right-reasons experiments for image classifiers."""

__version__ = "0.1.0"
