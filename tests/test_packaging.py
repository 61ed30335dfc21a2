"""Packaging, manifest and project rules: the wheel, npe2, ruff, import layering, README/CI."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600, **kwargs)


def test_npe2_manifest_is_valid():
    result = _run(str(BIN / "npe2"), "validate", "napari-textseg")
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_ships_the_manifest_samples_phantom_models_and_py_typed(tmp_path):
    result = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(REPO),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [wheel] = tmp_path.glob("napari_textseg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("napari_textseg/napari.yaml") == (REPO / "napari.yaml").read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "napari-textseg = napari_textseg:napari.yaml" in text
    assert "napari-textseg = napari_textseg.cli:main" in text
    for needed in [
        "napari_textseg/py.typed",
        "napari_textseg/data/samples/NOTICE.md",
        "napari_textseg/data/samples/abdomen_ct.nii.gz",
        "napari_textseg/data/models/phantom_sam.pth",
        "napari_textseg/data/models/training.json",
    ]:
        assert needed in names


def test_core_and_models_import_no_gui():
    """The import-linter contracts in pyproject.toml (core/models never import napari or Qt)."""
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "broken" not in result.stdout.split("Contracts:")[-1].lower().replace("0 broken", "")


def test_importing_the_engine_loads_no_gui_in_a_fresh_interpreter():
    code = (
        "import sys, napari_textseg.core.io, napari_textseg.models.loader, napari_textseg.cli; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt6', 'magicgui') if m in sys.modules]; "
        "print(bad); sys.exit(bool(bad))"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(BIN)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    result = _run(ruff, "check", ".")
    assert result.returncode == 0, result.stdout[-3000:]
    formatted = _run(ruff, "format", "--check", ".")
    assert formatted.returncode == 0, "run `ruff format .`:\n" + formatted.stdout[-3000:]


# A newcomer reads a module in one sitting and a class on a few screens (issue 34).
MAX_MODULE_LINES, MAX_CLASS_LINES = 450, 250


def test_no_module_over_450_lines_and_no_class_over_250():
    import ast

    over = []
    for path in sorted((REPO / "src" / "napari_textseg").rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(REPO)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            over.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > MAX_CLASS_LINES:
                    over.append(f"{name}: class {node.name} {size} lines")
    assert not over, over


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    [command] = re.findall(
        r"^bash tools/system_packages.sh && python3 -m venv .*pytest.*$", ci, flags=re.M
    )
    assert command in readme, "the README's test command and .ci/run must be the same line"


def test_sdist_and_wheel_build_and_pass_twine_check(tmp_path):
    """What PyPI (and so the napari hub) will take and render."""
    result = _run(
        sys.executable,
        "-m",
        "build",
        "--no-isolation",
        "--sdist",
        "--wheel",
        "--outdir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    dists = sorted(str(p) for p in tmp_path.iterdir())
    assert any(d.endswith(".tar.gz") for d in dists) and any(d.endswith(".whl") for d in dists)
    check = _run(sys.executable, "-m", "twine", "check", "--strict", *dists)
    assert check.returncode == 0, check.stdout + check.stderr


def test_hub_metadata_and_release_workflows():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["description"] and project["readme"] == "README.md"
    assert "Framework :: napari" in project["classifiers"]
    assert {"Source Code", "Bug Tracker", "Documentation", "User Support"} <= set(project["urls"])
    readme = (REPO / "README.md").read_text()
    # PyPI renders the README as the hub's description: no relative images or links.
    assert not re.findall(r"\]\((?!https?://|#)[^)]+\)", readme)
    assert re.search(r"!\[[^\]]*\]\(https://raw\.githubusercontent\.com/[^)]+\.png\)", readme)
    assert (REPO / "CHANGELOG.md").is_file()
    release = (REPO / ".github" / "workflows" / "release.yml").read_text()
    assert (
        "tags:" in release
        and "id-token: write" in release
        and "pypa/gh-action-pypi-publish" in release
    )
    assert "bash .ci/run" in (REPO / ".github" / "workflows" / "ci.yml").read_text()


def _fake_venv(folder: Path, torch_installed: bool) -> Path:
    """A venv whose pip records its arguments and whose python knows whether torch is there."""
    bin_ = folder / "venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "pip").write_text(f'#!/bin/sh\necho "$@" >> {folder}/pip.log\n')
    probe = (
        "exit 0" if torch_installed else 'case "$*" in *print*) echo 2.9.0 CPU;; *) exit 1;; esac'
    )
    (bin_ / "python").write_text(f"#!/bin/sh\n{probe}\n")
    for tool in bin_.iterdir():
        tool.chmod(0o755)
    return folder / "venv"


@pytest.mark.parametrize(
    "gpu, torch_installed, wants_cpu_index",
    [(False, False, True), (True, False, False), (False, True, False)],
)
def test_the_readme_installs_cpu_torch_only_without_an_nvidia_gpu(
    tmp_path, gpu, torch_installed, wants_cpu_index
):
    """The main command's install_torch.sh: PyTorch's CPU wheels (0.2 GB, not 6.4 GB of CUDA
    libraries) where no NVIDIA GPU is found; nothing where one is, or where torch is installed."""
    readme = (REPO / "README.md").read_text()
    assert (
        "python3 -m venv .venv && bash tools/install_torch.sh .venv && "
        '.venv/bin/pip install -e ".[pyqt6]"' in readme
    )
    venv = _fake_venv(tmp_path, torch_installed)
    path = tmp_path / "path"
    path.mkdir()
    for tool in ("uname", "sh", "cat", "echo"):
        found = shutil.which(tool)
        if found:
            (path / tool).symlink_to(found)
    if gpu:
        (path / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        (path / "nvidia-smi").chmod(0o755)
    env = {"PATH": str(path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [shutil.which("bash"), str(REPO / "tools" / "install_torch.sh"), str(venv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "pip.log").read_text() if (tmp_path / "pip.log").exists() else ""
    assert (
        "--index-url https://download.pytorch.org/whl/cpu torch torchvision" in log
    ) == wants_cpu_index, log
    assert done.stdout.count("\n") == 1  # one line says what it did
