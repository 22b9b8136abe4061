"""The demo and the portal sit on top: no other app's code imports them, and the shared kernel
(`apps.core`) imports no project app. Tests and bench/ may import the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import apps

APPS_DIR = Path(apps.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _code_of(app: str) -> list[Path]:
    return [
        p for p in (APPS_DIR / app).rglob("*.py") if "tests" not in p.relative_to(APPS_DIR).parts
    ]


def _offenders(apps_: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(APPS_DIR.parent)}: {module}"
        for app in apps_
        for path in _code_of(app)
        for module in _imports(path)
        if module.startswith(forbidden)
    )


def _apps_except(*names: str) -> list[str]:
    return [p.name for p in APPS_DIR.iterdir() if (p / "apps.py").exists() and p.name not in names]


def test_no_app_imports_the_demo_or_the_portal():
    assert _offenders(_apps_except("demo", "portal"), ("apps.demo", "apps.portal")) == []
    assert _offenders(["portal"], ("apps.demo",)) == []


def test_the_kernel_imports_no_project_app():
    others = tuple(f"apps.{name}" for name in _apps_except("core"))
    assert _offenders(["core"], others) == []
