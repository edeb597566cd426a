"""A fresh clone passes: tests read only the repository, and `make test` reports both passes."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def test_no_test_reads_the_shared_folder_beside_the_repository():
    """The design folder is not part of a clone: samples come from tests/fixtures."""
    offenders = []
    for path in TESTS.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if re.search(r"""["']\.\./shared|/\s*["']shared["']""", source):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    names = {p.name for p in (TESTS / "fixtures" / "meta").glob("*.json")}
    assert {"signature_vectors.json", "messenger_text.json", "whatsapp_text.json",
            "sendapi_messenger_success.json"} <= names
    assert "shared design folder" in (TESTS / "fixtures" / "meta" / "README.md").read_text()


@pytest.fixture
def stub_venv(tmp_path):
    """A virtualenv stand-in whose `python` records each pytest pass; SQLite's fails."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "passes.log"
    python = venv / "bin" / "python"
    python.write_text(f"""#!/bin/sh
echo "pass db=${{TEST_DATABASE_URL:-sqlite}} args=$*" >> {log}
[ -n "$TEST_DATABASE_URL" ]
""")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (venv / ".installed").touch()
    (venv / ".installed-dev").touch()
    return venv, log


@pytest.mark.skipif(shutil.which("make") is None and os.environ.get("CI") != "true",
                    reason="make is not installed (under CI=true this test runs and fails)")
def test_make_test_runs_and_reports_both_passes_when_the_first_fails(stub_venv):
    venv, log = stub_venv
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    proc = subprocess.run(["make", "-s", "test", f"VENV={venv}", "PYTEST_ARGS=-q"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    passes = log.read_text().splitlines()
    assert len(passes) == 2, proc.stdout + proc.stderr
    assert passes[0].startswith("pass db=sqlite")
    assert passes[1].startswith("pass db=postgresql://")
    assert proc.returncode != 0
    assert "SQLite FAILED" in proc.stdout and "PostgreSQL passed" in proc.stdout


def test_makefile_uses_the_readme_app_path():
    """`flask --app X` is spelled the same in the Makefile as in the README."""
    pattern = re.compile(r"flask\s+--app\s+(\S+)")
    readme = set(pattern.findall((ROOT / "README.md").read_text()))
    makefile = set(pattern.findall((ROOT / "Makefile").read_text()))
    assert makefile and makefile <= readme, (makefile, readme)
    assert readme == {"main"}


def _pins(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line (extras dropped, names normalised)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.strip()
    return pins


def test_constraints_pin_every_requirement_at_its_own_version():
    """A fresh clone installs the tested set: each package a requirements file pins is in
    constraints.txt at the same version (a bump in one file alone would make pip refuse)."""
    locked = _pins(ROOT / "constraints.txt")
    wanted = {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-dev.txt")}
    assert wanted
    assert {n: v for n, v in wanted.items() if locked.get(n) != v} == {}
