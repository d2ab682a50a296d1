"""pdflatex for the tests that compile what derive prints: required on CI, skipped elsewhere."""
import os
import shutil

import pytest


def pdflatex_or_skip() -> str:
    """The path of pdflatex; the test is skipped without it, and fails on CI."""
    if shutil.which("pdflatex"):
        return shutil.which("pdflatex")
    if os.environ.get("CI") == "true":
        pytest.fail("pdflatex is missing on CI; .ci/run installs texlive-latex-base")
    pytest.skip("pdflatex is not installed")
