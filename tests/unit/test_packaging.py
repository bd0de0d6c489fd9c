"""The wheel installs one namespace: `clickagg`, with the card's folders inside it (README "Layout")."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_clickagg_package(tmp_path: Path) -> None:
    # setuptools stages files in <project>/build and would pack stale ones left there by an older tree.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("clickagg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"clickagg", wheel.name.split("-py3")[0] + ".dist-info"}
    for package in ("app", "agents", "tables", "reference_data"):
        assert f"clickagg/{package}/__init__.py" in names, package
    assert "clickagg/app/static/dashboard.css" in names  # package data travels too
    assert "clickagg/stack/java/EsNode.java" in names


def test_the_card_folders_are_the_packages_themselves() -> None:
    """Top-level folders stay where the project card wants them; clickagg/<name> links to each."""
    for package in ("app", "agents", "tables", "reference_data"):
        link = ROOT / "clickagg" / package
        assert link.is_symlink() and link.resolve() == (ROOT / package).resolve(), package


def test_nothing_imports_the_folders_by_their_bare_names() -> None:
    """`import app` would load a second copy of a module under another name (two registries...)."""
    offenders = []
    links = {ROOT / "clickagg" / name for name in ("app", "agents", "tables", "reference_data")}
    for path in ROOT.rglob("*.py"):
        if {".venv", "build"} & set(path.parts) or any(path.is_relative_to(link) for link in links):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            stripped = line.strip()
            for bare in ("app", "agents", "tables", "reference_data"):
                if stripped.startswith((f"from {bare}.", f"from {bare} import", f"import {bare}")):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert not offenders, offenders
