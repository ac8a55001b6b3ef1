"""The qsetfit command line: routing and printing only; the work is done by the library."""

from qsetfit.cli.main import app

__all__ = ["app"]
