"""kerascnn's modules import down its floors only, with no cycle, and at their tops."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "kerascnn")

# The floors, bottom first: a module imports from its own floor or those below it.
FLOORS = (
    ("errors", "files", "compat", "figures", "losses", "run_folder"),
    ("layers",),
    ("models", "data", "analysis"),
    ("training",),
    ("evaluation",),
    ("workflow",),
    ("transfer",),
    ("tuning",),
    ("cli", "__main__"),
)
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}

# Imports inside functions, on purpose: the command line and the lazy packages answer
# without loading TensorFlow.
LAZY = {"kerascnn", "kerascnn.cli", "kerascnn.tuning"}


def _modules():
    """{module name: its parsed source} for every module of kerascnn."""
    found = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                module = module.removesuffix(".__init__")
                with open(path, encoding="utf-8") as f:
                    found[module] = ast.parse(f.read())
    return found


def _imported(node, modules):
    """The kerascnn modules an import statement names (a name that is a module counts as it)."""
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        named = [f"{node.module}.{a.name}" for a in node.names]
        return {m if m in modules else node.module for m in named} & set(modules)
    if isinstance(node, ast.Import):
        return {a.name for a in node.names} & set(modules)
    return set()


def _edges(modules, top_only=False):
    """{(importer, imported)}: every import between kerascnn modules (or those at the top)."""
    edges = set()
    for module, tree in modules.items():
        nodes = tree.body if top_only else ast.walk(tree)
        for node in nodes:
            edges |= {(module, target) for target in _imported(node, modules) if target != module}
    return edges


def _floor(module):
    parts = module.split(".")
    return FLOOR.get(parts[1]) if len(parts) > 1 else 0  # the package itself imports nothing


def test_every_module_has_a_floor():
    modules = _modules()
    assert [m for m in modules if _floor(m) is None] == []


def test_imports_point_down_the_floors():
    up = sorted((a, b) for a, b in _edges(_modules()) if _floor(b) > _floor(a))
    assert up == []


def test_no_import_cycle():
    modules = _modules()
    # A package's __init__ gathering its own modules is no cycle with them.
    graph = {}
    for a, b in _edges(modules):
        if not (a != "kerascnn" and b.startswith(a + ".")):
            graph.setdefault(a, set()).add(b)
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_imports_are_at_the_top_of_their_modules():
    modules = _modules()
    inside = _edges(modules) - _edges(modules, top_only=True)
    assert sorted((a, b) for a, b in inside if a not in LAZY) == []


def test_importing_training_loads_no_module_above_it():
    code = ("import sys, kerascnn.training; print(sorted(m for m in sys.modules if m.startswith("
            "('kerascnn.evaluation', 'kerascnn.workflow', 'kerascnn.transfer', "
            "'kerascnn.tuning'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert loaded.stdout.strip() == "[]"
