"""Shared test set-up: a private cache of passed checks, so every session checks afresh."""
import os
import tempfile

import pytest

os.environ["DERIVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="derive-test-cache-")


@pytest.fixture(scope="session")
def derivations():
    import derive
    return {name: derive.derivation(name) for name in derive.names()}


@pytest.fixture(scope="session")
def m():
    """The generated NumPy module, compiled in memory."""
    import derive
    return derive.numpy_module()
