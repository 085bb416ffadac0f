"""Test setup: 8 simulated CPU devices, quick compilation, float64 enabled, bounded hypothesis runs.

XLA_FLAGS must be set before jax initialises its backends, so this runs at import.
"""

import os

# Tests are mostly compilation of tiny programs: XLA's backend optimisation level 0 compiles them
# about a third faster (the results agree with eager execution at least as closely).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hypothesis  # noqa: E402
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

hypothesis.settings.register_profile(
    "cfjax", max_examples=15, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cfjax"))

# Identical programs (the trainer tests build the same tiny model many times) compile once per
# test run: XLA's persistent cache in a temporary directory. The process that imports this first
# (pytest itself, or the xdist controller) creates it and removes it when the run ends; xdist workers
# and the command lines the tests start inherit it through JAX_COMPILATION_CACHE_DIR. A directory
# the caller set is used and kept.
import shutil  # noqa: E402
import tempfile  # noqa: E402

_OWN_CACHE = None
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    _OWN_CACHE = tempfile.mkdtemp(prefix="cfjax_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE

os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1.0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
