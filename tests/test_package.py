"""cfjax is an installable package: the wheel holds every subpackage and its data, and imports anywhere."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_the_library_and_imports_from_any_directory(tmp_path):
    source = tmp_path / "source"  # build from a copy: an in-tree build would write build/ into the clone
    shutil.copytree(ROOT / "cfjax", source / "cfjax", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("cfjax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.relative_to(ROOT)) for p in (ROOT / "cfjax").rglob("__init__.py")}
    assert packages <= names, f"subpackages missing from the wheel: {sorted(packages - names)}"
    assert "cfjax/interop/kinetics400_classes.txt" in names
    assert not any(n.startswith(("experiments/", "configs/", "tests/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "import cfjax, cfjax.interop as i; print(cfjax.__file__); print(len(i.kinetics400_class_names()))"],
        cwd=elsewhere, env={"PYTHONPATH": str(site), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    path, count = result.stdout.split()
    assert Path(path).is_relative_to(site) and count == "400"
