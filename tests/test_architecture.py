"""The architecture contracts in pyproject.toml (import-linter) hold, and each one bites.

The real tree must keep every contract. Then the tree is copied, one import that breaks each
contract is added to the copy, and import-linter, pointed at the copy, must fail and name every
broken contract. All violations go into one copy so the graph is built once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

CONTRACTS = {
    "pure-engines": "Pure domain engines import no Django",
    "app-internal-layers": "Within an app: entry points -> services -> selectors -> models",
    "app-layers": "Apps depend downwards only",
}

# contract id -> (module file in the copy, the import appended to it, the edge lint-imports reports)
VIOLATIONS = {
    # A pure engine reaching for Django.
    "pure-engines": (
        "apps/market/clearing.py",
        "import django.db",
        "apps.market.clearing -> django",
    ),
    # A selector importing its own app's services (upwards inside one app).
    "app-internal-layers": (
        "apps/market/selectors.py",
        "import apps.market.services",
        "apps.market.selectors -> apps.market.services",
    ),
    # A lower app importing a higher one (meters knows nothing of the market).
    "app-layers": (
        "apps/meters/models.py",
        "import apps.market.models",
        "apps.meters.models -> apps.market.models",
    ),
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_real_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in result.stdout


@pytest.fixture(scope="module")
def violated_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", "static", "data")
    for package in ("apps", "config"):
        shutil.copytree(ROOT / package, tree / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    for path, statement, _edge in VIOLATIONS.values():
        with (tree / path).open("a") as module:
            module.write(f"\n{statement}  # deliberate violation\n")
    return tree


def test_each_contract_fails_on_a_violating_import(violated_tree: Path):
    result = lint_imports(violated_tree)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    for contract_id, name in CONTRACTS.items():
        assert f"{name} BROKEN" in out, contract_id
        assert VIOLATIONS[contract_id][2] in out, contract_id
