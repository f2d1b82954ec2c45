"""The package's layout holds: every import runs down the layers (never back up, never into the commands),
no two modules import each other in a circle, and no module grows past 300 lines."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrisr"
# A part may import the parts of lower rank and its own; paper and scans are side by side, apart. The package
# root (rank 7) hands out the API lazily: nothing imports it.
RANKS = {"mrisr.errors": 0, "mrisr.version": 0, "mrisr.core": 1, "mrisr.nets": 2, "mrisr.paper": 3, "mrisr.scans": 3,
         "mrisr.studies": 4, "mrisr.api": 5, "mrisr.commands": 6}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path):
    """The mrisr modules a file imports, at its top or inside functions, with the line of each."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mrisr":
            for alias in node.names:  # `from mrisr.nets import models` imports mrisr.nets.models
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                yield (candidate if is_module else node.module), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mrisr":
                    yield alias.name, node.lineno


def part(module):
    return next((name for name in sorted(RANKS, key=len, reverse=True)
                 if module == name or module.startswith(name + ".")), "mrisr")


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_imports_run_down_the_layers():
    upward = []
    for module, path in MODULES.items():
        for imported, line in imported_modules(path):
            if part(module) != part(imported) and RANKS.get(part(module), 7) <= RANKS.get(part(imported), 7):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert not upward, "imports running up or sideways:\n" + "\n".join(upward)


def test_no_module_imports_itself_through_others():
    graph = {module: {imported for imported, _ in imported_modules(path) if imported in MODULES} - {module}
             for module, path in MODULES.items()}
    state, circles = {}, []

    def visit(module, trail):
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                circles.append(" -> ".join(trail[trail.index(other):] + [other]))
            elif other not in state:
                visit(other, trail + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_stays_small(module):
    assert len(MODULES[module].read_text().splitlines()) <= 300


def test_importing_the_package_and_its_commands_loads_no_framework():
    """`import mrisr` (and every command before it runs) stays light: TensorFlow and Keras load with the
    first piece of work, so that --help, --version and bad options answer at once."""
    import subprocess
    import sys

    commands = sorted(path.stem for path in (PACKAGE / "commands").glob("*.py") if path.stem != "__init__")
    code = ("import sys, mrisr, mrisr.api, " + ", ".join(f"mrisr.commands.{name}" for name in commands)
            + "; print(sorted(n for n in ('tensorflow', 'keras', 'jax', 'torch') if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
