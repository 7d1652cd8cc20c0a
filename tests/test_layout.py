"""The package's layout keeps its promises (docs/architecture.md, Layout).

Each folder of `trac_breezy/` is a room for one runtime, and imports between
rooms point one way only; no module imports itself back through others; the
smart server never imports Trac; no module grows past what a reader can hold.
Imports inside functions count too: they are imports all the same. So do
imports under `if TYPE_CHECKING:`: nothing is loaded, but the module leans on
the other's shape all the same, and a type-only import back is how a circle
hides (describe the shape with a `typing.Protocol` instead).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trac_breezy"
MAX_LINES = 600

# room -> the rooms it may import from (besides itself). "" is the package's
# own __init__ (log, one_line); "setenv" is the contract module.
ALLOWED = {
    "": set(),
    "setenv": set(),
    # Every Bazaar format Breezy reads, for each room that opens branches.
    "bzr_formats": set(),
    # The access rules (one file for brz and Trac): read inside both apps.
    "authz": {""},
    "container": {""},
    # Admin tasks drive Trac, which loads our plugins (the `bzr` connector).
    "admin": {"", "container", "trac_app", "bzr_formats"},
    "startup": {"", "container", "admin", "setenv", "authz", "passwords"},
    # Apache's Basic-auth provider, inside Apache's own processes (mod_wsgi).
    "passwords": set(),
    "smart_server": {"", "setenv", "authz", "bzr_formats"},
    "trac_app": {"", "setenv", "authz", "bzr_formats"},
    # Breezy plugins for the user's own brz client (the container only serves
    # the files): they import nothing from trac_breezy.
    "brz_plugin": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, module: str) -> Iterator[str]:
    """Every module name `path` imports (at run time or for type checking), absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def our_imports(known: dict[str, Path]) -> dict[str, set[str]]:
    return {
        name: {m for m in imported(path, name) if m in known and m != name}
        for name, path in known.items()
    }


def test_rooms_import_one_way():
    known = modules()
    wrong = [
        f"{name} imports {other}"
        for name, others in our_imports(known).items()
        for other in others
        if room(other) != room(name) and room(other) not in ALLOWED[room(name)]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_room_is_known():
    assert {room(name) for name in modules()} <= set(ALLOWED)


def test_no_import_circles():
    graph = our_imports(modules())
    # A package's __init__ importing nothing of its own keeps this meaningful.
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycle = [*trail[trail.index(other) :], other] if other in trail else [name, other]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_smart_server_never_imports_trac():
    for name, path in modules().items():
        if room(name) == "smart_server":
            trac = [m for m in imported(path, name) if m == "trac" or m.startswith("trac.")]
            assert not trac, f"{name} imports {trac}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"


def test_the_checks_see_imports_in_functions_and_type_only_ones(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from trac_breezy.smart_server import app\n"
        "def later():\n"
        "    import trac.env\n"
    )
    found = set(imported(source, "trac_breezy.trac_app.sample"))
    assert {"trac_breezy.trac_app.sibling", "trac.env", "trac_breezy.smart_server.app"} <= found


def test_the_readme_s_layout_names_every_module_and_script():
    """docs/architecture.md's Layout section draws the tree: a new module gets its line there."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    drawing = page.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    files = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    files += sorted((PACKAGE.parent / "wsgi").glob("*.wsgi"))
    missing = [str(p.relative_to(PACKAGE.parent)) for p in files if p.name not in drawing]
    assert not missing, f"add a line for each to docs/architecture.md's Layout: {missing}"
