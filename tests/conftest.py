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
# test run: XLA's persistent cache in a temporary directory shared by the xdist workers of one run
# and by the command lines the tests start (they inherit JAX_COMPILATION_CACHE_DIR).
import tempfile  # noqa: E402

_run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
if _run:
    _cache = os.path.join(tempfile.gettempdir(), f"cfjax_xla_cache_{_run}")
    os.makedirs(_cache, exist_ok=True)
else:
    _cache = tempfile.mkdtemp(prefix="cfjax_xla_cache_")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _cache)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1.0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
