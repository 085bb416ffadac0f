"""Every notebook in notebooks/ runs top to bottom in smoke mode with a real Jupyter kernel (nbclient).

The source of truth is ``notebooks/NAME.py`` (jupytext ``py:percent``); ``NAME.ipynb`` is its
conversion with no outputs (what Colab opens). Here each ``.py`` is converted, a cell setting
``SMOKE = True`` and a temporary ``WORKDIR`` is inserted after the ``parameters`` cell (as papermill
does), and the notebook is executed in a fresh kernel on the CPU: any error cell fails the test.
The kernel's environment is set explicitly (it is another process than the test's: no simulated
8 devices, no float64); the synthetic data is generated once for all notebooks (a session-wide
``$CFJAX_DATA_DIR``) and compilations go to the test run's persistent cache
(``$JAX_COMPILATION_CACHE_DIR``, set by tests/conftest.py). ``CFJAX_NOTEBOOK_OUTPUT_DIR=DIR`` keeps
the executed notebooks (with their outputs and pictures) in DIR for a look.

The runs a notebook trains that are smoke configs (``tests.train.smoke.NOTEBOOK_TRAINED``) are
checked with the smoke runs' contract here and are not trained again by tests/train.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.train.smoke import NOTEBOOK_TRAINED, check_run, get_config

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
NEEDS_TORCH = {"02_pretrained_inference"}  # builds a random pytorchvideo checkpoint in smoke mode
TIMEOUT = 600  # seconds per cell


@pytest.fixture(scope="session")
def notebook_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook_data")


def _kernel_env(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.pop("JAX_ENABLE_X64", None)  # one CPU device (no simulated 8), float32: what a user's kernel has
    # Smoke runs are all compilation: XLA's optimisation level 0 and rbg keys about halve it on a CPU
    # (as tests/train/smoke.py does for the smoke configs).
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_backend_optimization_level=0",
        JAX_DEFAULT_PRNG_IMPL="rbg",
        CFJAX_DATA_DIR=str(data_dir),
        MPLBACKEND="agg",
        PYTHONPATH=str(ROOT),
    )
    return env


def smoke_notebook(source: Path, workdir: Path):
    """The notebook of ``source`` with ``SMOKE = True`` and ``WORKDIR`` set after its parameters cell."""
    nb = jupytext.read(source)
    index = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(index) == 1, f"{source.name}: expected one cell tagged 'parameters', found {len(index)}"
    injected = nbformat.v4.new_code_cell(f"SMOKE = True\nWORKDIR = {str(workdir)!r}")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index[0] + 1, injected)
    return nb


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(source, notebook_data_dir, tmp_path):
    if source.stem in NEEDS_TORCH:
        from tests.interop.reference import pytorchvideo_x3d

        pytorchvideo_x3d()  # skips without torch / pytorchvideo, fails under CFJAX_REQUIRE_TORCH=1 (CI)
    nb = smoke_notebook(source, tmp_path / "work")
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    try:
        client.execute(env=_kernel_env(notebook_data_dir))  # raises CellExecutionError on the first error cell
    finally:
        if os.environ.get("CFJAX_NOTEBOOK_OUTPUT_DIR"):
            out = Path(os.environ["CFJAX_NOTEBOOK_OUTPUT_DIR"])
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out / f"{source.stem}.ipynb")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    for run, name in NOTEBOOK_TRAINED.get(source.stem, {}).items():
        check_trained_smoke_config(tmp_path / "work" / run, name)


RUN_OWN_KEYS = ("mesh",)  # set by fit_to_devices (every local device for data parallelism)


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in RUN_OWN_KEYS:
            continue
        flat.update(_flat(value, f"{path}.") if isinstance(value, dict) else {path: value})
    return flat


def check_trained_smoke_config(workdir: Path, name: str):
    """The notebook's run in ``workdir`` keeps the smoke-run contract and trained ``name``'s smoke config."""
    config = check_run(workdir)
    expected = json.loads(get_config(name, "variant=smoke").to_json_best_effort())
    trained, wanted = _flat(config.to_dict()), _flat(expected)
    differing = sorted(k for k in trained.keys() | wanted.keys() if trained.get(k) != wanted.get(k))
    assert not differing, f"{workdir.name}: not the smoke config of {name}: {differing}"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ipynb_is_the_stripped_conversion_of_the_py(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `jupytext --sync notebooks/{source.name}`"
    stored = nbformat.read(ipynb, as_version=4)
    expected = jupytext.read(source)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in expected.cells], (
        f"{ipynb.name} differs from {source.name}: run `jupytext --sync notebooks/{source.name}`"
    )
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{ipynb.name}: outputs not stripped"


def test_every_notebook_has_a_colab_line_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for source in NOTEBOOKS:
        assert f"/blob/main/notebooks/{source.stem}.ipynb" in readme, f"README: no Open in Colab line for {source.stem}"
