"""The package metadata against the code: every directly imported package is declared, the
platform-only ones carry their marker, and what a wheel must hold (py.typed, the licence) is in it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Godwit's own import packages, as pyproject.toml lists them for the wheel.
PACKAGES = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
)
LOCAL = ("model", "kernels")  # the local model: the `local` extra may supply their imports
CORE = tuple(p for p in PACKAGES if p not in LOCAL)
# Modules of the core packages that only the local model path imports (the `local` extra).
LOCAL_ONLY_FILES = {"agent/providers/local.py", "agent/providers/local_models.py"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _third_party_imports(folder: str) -> dict[str, set[str]]:
    """Top-level module name -> files (relative) that import it, for one package folder."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in PACKAGES:
                    continue
                found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _distribution(module: str) -> str:
    dists = importlib.metadata.packages_distributions().get(module)
    assert dists, f"{module} is imported but no installed distribution provides it"
    return re.sub(r"[-_.]+", "-", dists[0]).lower()


def test_every_direct_import_is_declared():
    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    local = core | {_name(r) for r in project["optional-dependencies"]["local"]}
    missing = []
    for folder in PACKAGES:
        for module, files in _third_party_imports(folder).items():
            dist = _distribution(module)
            core_use = folder in CORE and not files <= LOCAL_ONLY_FILES
            declared = core if core_use else local
            if dist not in declared:
                missing.append(f"{module} ({dist}) imported by {min(files)}")
    assert not missing, "imported but not declared: " + "; ".join(missing)


def test_undeclared_imports_would_be_caught():
    # The check above must see the packages the issue found missing (gitdb, httpx2).
    imports = _third_party_imports("checkpoints") | _third_party_imports("agent")
    assert {"gitdb", "httpx2"} <= set(imports)
    assert _distribution("git") == "gitpython"


def test_triton_only_on_linux_and_license_declared():
    project = _project()
    triton = [r for r in project["optional-dependencies"]["local"] if _name(r) == "triton"]
    assert len(triton) == 1 and re.search(r";\s*sys_platform\s*==\s*['\"]linux['\"]", triton[0])
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "The Godwit authors" in text


@pytest.mark.slow
def test_wheel_holds_py_typed_and_license(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("godwit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, package
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)[:20]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert re.search(r"Requires-Dist: triton>=3\.6; .*sys_platform == \"linux\"", text), text


def test_readme_and_ci_run_the_same_tests_and_the_flags_are_documented():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "pip install torch==2.13.0 && pip install -e '.[local,test]' && python -m pytest -q"
    assert command in readme
    assert ci.rstrip().splitlines()[-1] == command
    assert "ripgrep" in readme  # what .ci/run adds before it, said where the command is
    for flag in (
        "--print",
        "--allowedTools",
        "--disallowedTools",
        "--append-system-prompt",
        "--system-prompt",
        "--settings",
        "--add-dir",
        "--version",
        "--continue",
        "--resume",
        "--max-turns",
        "--permission-mode",
        "--model",
    ):
        assert flag in readme, flag
    for alias in ("sonnet", "opus", "haiku", "anthropic:sonnet"):
        assert f"`{alias}`" in readme or f"`--model {alias}`" in readme, alias
    assert "benchmarks/startup_bench.py" in readme and "claude -p" in readme
