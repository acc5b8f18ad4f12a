"""The ``mrparotid`` command line. In: argv. Out: one library call per verb (``main``: phantom,
prepare, fit, ablate, diagnose, evaluate; ``dicom``: inspect, convert), every user-fixable problem
as one line with exit code 2."""

from mrparotid.cli.main import main

__all__ = ["main"]
