"""The package layers of DESIGN.md: a module imports only from its own layer or lower ones."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("harness", "sim_envs", "gcs_planner", "real_data", "eval")
TOP = ("harness.cli", "harness.commands", "harness.study")


def layer(module: str) -> int:
    if module == "harness.data" or module.startswith("harness.data."):
        return 1
    if module.split(".")[0] == "sim_envs":
        return 1
    if module.split(".")[0] in ("gcs_planner", "real_data"):
        return 2
    if any(module == t or module.startswith(t + ".") for t in TOP):
        return 5
    if module.split(".")[0] == "eval":
        return 4
    if module == "harness" or module.startswith("harness."):
        return 3
    raise ValueError(module)


def our_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def test_no_module_imports_from_a_higher_layer():
    violations = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for imported in our_imports(path):
                if layer(imported) > layer(module):
                    violations.append(f"{module} (layer {layer(module)}) imports {imported} (layer {layer(imported)})")
    assert not violations, "\n".join(violations)


def test_dataset_format_imports_nothing_else_of_ours():
    for path in (ROOT / "harness" / "data").rglob("*.py"):
        for imported in our_imports(path):
            assert imported.startswith("harness.data"), f"{path} imports {imported}"
