"""The package layers of docs/architecture.md, as folders: a module imports only from its own layer or lower ones, and
every module of harness/ lives in the folder of its layer (harness/core, harness/learning, harness/study,
harness/cli), so the folders and the layer table of docs/architecture.md say the same thing."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("harness", "sim_envs", "gcs_planner", "real_data", "eval")
# package prefix -> layer (docs/architecture.md); the longest matching prefix wins
LAYERS = {"harness.core": 1, "sim_envs": 1, "gcs_planner": 2, "real_data": 2, "harness.learning": 3,
          "eval": 4, "harness.study": 5, "harness.cli": 5, "harness": 5}
HARNESS_FOLDERS = {"core", "learning", "study", "cli"}


def layer(module: str) -> int:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    if not prefixes:
        raise ValueError(module)
    return LAYERS[max(prefixes, key=len)]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


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
            module = module_name(path)
            for imported in our_imports(path):
                if layer(imported) > layer(module):
                    violations.append(f"{module} (layer {layer(module)}) imports {imported} (layer {layer(imported)})")
    assert not violations, "\n".join(violations)


def test_every_harness_module_is_in_the_folder_of_its_layer():
    loose = [p.name for p in (ROOT / "harness").glob("*.py") if p.name != "__init__.py"]
    folders = {p.name for p in (ROOT / "harness").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert not loose, f"modules outside a layer folder: {loose}"
    assert folders == HARNESS_FOLDERS, folders
    assert not our_imports(ROOT / "harness" / "__init__.py"), "the package root imports nothing: no layer of its own"


def test_the_core_toolkit_imports_nothing_else_of_ours():
    for path in (ROOT / "harness" / "core").rglob("*.py"):
        for imported in our_imports(path):
            assert imported.startswith("harness.core"), f"{path} imports {imported}"


def test_the_study_modules_import_each_other_without_a_cycle():
    """harness/study: each module's imports of its siblings form no cycle (a newcomer reads them bottom up)."""
    study = {module_name(p): {i for i in our_imports(p) if i.startswith("harness.study.")}
             for p in (ROOT / "harness" / "study").glob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail + [module])
        state[module] = "open"
        for imported in study.get(module, ()):
            visit(imported, trail + [module])
        state[module] = "done"

    for module in study:
        visit(module, [])
