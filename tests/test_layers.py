"""The package's layers (README, Layout): a module imports only from its own layer or below."""

from __future__ import annotations

import ast

from conftest import REPO

# lower first; a module may import from its own layer and any earlier one
LAYERS = [
    ("base", ["xane3/objective.py", "xane3/atomic.py", "xane3/config.py", "xane3/overlays.py",
              "xane3/provenance.py", "xane3/rayenv.py", "xane3/broadening.py",
              "xane3/cli_common.py", "xane3/coerce.py", "xane3/lock.py"]),
    ("data", ["xane3/data/"]),
    ("model", ["xane3/model/"]),
    ("train", ["xane3/train/", "xane3/baseline.py"]),
    ("application", ["xane3/"]),  # inference, ensemble, predict, evaluate, metrics, lcf, plots, datagen
    ("drivers", ["search/", "ablations/", "benchmarks/"]),
]
INDEPENDENT = {("data", "model"), ("model", "data")}  # neither needs the other


def layer_of(path: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes):
            return i
    raise AssertionError(f"{path}: in no layer")


def module_path(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] not in ("xane3", "search", "ablations", "benchmarks"):
        return None
    for n in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:n])
        if base.with_suffix(".py").is_file():
            return str(base.with_suffix(".py").relative_to(REPO))
        if (base / "__init__.py").is_file():
            return str((base / "__init__.py").relative_to(REPO))
    return None


def test_no_module_imports_from_a_higher_layer() -> None:
    bad = []
    files = [p for d in ("xane3", "search", "ablations", "benchmarks") for p in (REPO / d).rglob("*.py")]
    for f in files:
        rel = str(f.relative_to(REPO))
        me = layer_of(rel)
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                target = module_path(name)
                if target is None or target.endswith("xane3/__init__.py"):
                    continue
                other = layer_of(target)
                if other > me or (LAYERS[me][0], LAYERS[other][0]) in INDEPENDENT:
                    bad.append(f"{rel} ({LAYERS[me][0]}) imports {name} ({LAYERS[other][0]})")
    assert not bad, "\n".join(bad)
