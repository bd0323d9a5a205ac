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
    """Every module of ours that `path` imports: at the top, inside functions (ast.walk visits every node) and
    relative imports (`from .x import y`, resolved against the module's package)."""
    return {name for node in ast.walk(ast.parse(path.read_text())) for name in _imported(node, path)}


def _imported(node, path: Path) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level > 0:
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]                       # a module's package is its folder
        base = package[:len(package) - (node.level - 1)]
        names = [".".join(base + ([node.module] if node.module else []))]
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module]
    else:
        names = []
    return [n for n in names if n.split(".")[0] in PACKAGES]


def lazy_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, explained) of each import of ours inside a function. Explained: a comment on the
    import's own lines, or on the line above the first of the consecutive imports it belongs to (one comment
    may say why for a function's block of imports)."""
    lines = path.read_text().splitlines()
    out = []
    for func in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for body in _bodies(func):
            first = None
            for stmt in body:
                if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    first = None
                    continue
                first = first or stmt
                above = lines[first.lineno - 2].strip() if first.lineno > 1 else ""
                said = above.startswith("#") or any("#" in line for line in lines[stmt.lineno - 1:stmt.end_lineno])
                out += [(stmt.lineno, name, said) for name in _imported(stmt, path)]
    return out


def _bodies(func):
    """Every statement list inside a function (its body, and those of its if / try / with / for blocks)."""
    for node in ast.walk(func):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


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


def test_every_import_inside_a_function_says_why_it_is_not_at_the_top():
    """An import sits at the top of its module unless start-up time needs it late (Drake, torch, Ray or a
    plotting stack that the importing code does not always use; `cotrain X --help`, which loads a command's
    module for its flags only), and then a comment at the import says so."""
    silent = [f"{path.relative_to(ROOT)}:{line} imports {name}"
              for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
              for line, name, said in lazy_imports(path) if not said]
    assert not silent, "imports inside functions without a comment saying why:\n" + "\n".join(silent)


def test_relative_imports_are_resolved_and_checked(tmp_path):
    """`from ..learning import x` in harness/study/ is harness.learning, not ignored."""
    module = ROOT / "harness" / "study" / "stand_in.py"   # a path only: nothing is written there
    node = ast.parse("from ..learning.training import train").body[0]
    assert _imported(node, module) == ["harness.learning.training"]
    node = ast.parse("from . import plan").body[0]
    assert _imported(node, module) == ["harness.study"]
