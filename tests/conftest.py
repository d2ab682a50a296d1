"""Shared test set-up: a private cache of passed checks, RuntimeWarnings as errors, and the
catalogue checked once a run."""
import os
import tempfile

import pytest

os.environ["DERIVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="derive-test-cache-")
# a NumPy warning is an error in the tests and in every command they run, so that no warning
# text can reach a user's stderr unnoticed
os.environ["PYTHONWARNINGS"] = "error::RuntimeWarning"


@pytest.fixture(scope="session")
def reports():
    """Every derivation of the catalogue checked once; the passes go into the test run's
    cache, so that nothing later in the run (the CLI, the notebook, the generated module)
    checks them again."""
    import derive
    from derive.check import cache, check
    from derive.derivations import build
    out = {}
    for name in derive.names():
        d = build(name)
        out[name] = check(d)
        cache._remember(cache.fingerprint(d))
    return out


@pytest.fixture(scope="session")
def derivations(reports):
    import derive
    return {name: derive.derivation(name) for name in derive.names()}


@pytest.fixture(scope="session")
def m(reports):
    """The generated NumPy module, compiled in memory."""
    import derive
    return derive.numpy_module()
