"""Architecture rules that a reviewer would otherwise have to remember."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "textdqn"
RAY_ALLOWED = {"cluster", "bench"}  # bench measures Ray (and RLlib) itself


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ray_is_imported_only_in_cluster_and_bench():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        package = path.relative_to(PACKAGE).parts[0]
        if package in RAY_ALLOWED:
            continue
        if any(m == "ray" or m.startswith("ray.") for m in _imported_modules(path)):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == [], f"import ray outside textdqn/cluster: {offenders}"


def test_core_imports_stay_light():
    code = (
        "import sys, textdqn, textdqn.config, textdqn.types, textdqn.replay_server, textdqn.cli;"
        "print(','.join(m for m in ('ray', 'torch', 'transformers', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
