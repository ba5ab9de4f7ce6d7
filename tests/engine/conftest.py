"""Engine-only fixtures."""

from __future__ import annotations

import warnings

import pytest

from tests.stubs import Driver

# When a hypothesis test fails, hypothesis's pytest plugin imports hypothesis.extra._patching to suggest a patch;
# that imports libcst, which uses the deprecated mypy_extensions.TypedDict. Under filterwarnings=error the
# DeprecationWarning becomes an INTERNALERROR that hides the falsifying example, so import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst not installed: the plugin skips the patch too
        pass


@pytest.fixture
def d() -> Driver:
    """A fresh engine serving BTC and ETH (see tests.stubs.make_spec), driven command by command."""
    return Driver()
