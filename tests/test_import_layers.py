"""kerascnn's sub-packages import one another one way only (imports inside functions count)."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kerascnn")


def _subpackage(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "kerascnn" else None


def _imports():
    """{(importing sub-package, imported sub-package): a file where it happens}."""
    edges = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            here = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
            source = _subpackage(here)
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    imported = _subpackage(target)
                    if imported and source and imported != source and \
                            os.path.exists(os.path.join(PACKAGE, imported)):
                        edges.setdefault((source, imported), path)
    return edges


def test_no_two_sub_packages_import_each_other():
    edges = _imports()
    both_ways = sorted({tuple(sorted(pair)) for pair in edges if pair[::-1] in edges})
    assert not both_ways, [(a, b, edges[(a, b)], edges[(b, a)]) for a, b in both_ways]
    # the layers this test guards, one way: training reports with evaluation, transfer trains
    assert ("training", "evaluation") in edges and ("transfer", "training") in edges
