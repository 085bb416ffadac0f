"""Test setup: 8 simulated CPU devices, float64 enabled, bounded hypothesis runs.

XLA_FLAGS must be set before jax initialises its backends, so this runs at import.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hypothesis  # noqa: E402
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

hypothesis.settings.register_profile(
    "cfjax", max_examples=15, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cfjax"))

# Identical programs (the trainer tests build the same tiny model many times) compile once
# per session: XLA's persistent cache in a per-session temporary directory.
import tempfile  # noqa: E402

jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="cfjax_xla_cache_"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
