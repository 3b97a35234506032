"""Layering: core/ and engines/ never need Qt; importing the package loads neither torch nor Qt."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_QT = textwrap.dedent("""
    import importlib.abc, sys
    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'):
                raise ImportError(f'Qt is blocked in this test: {name}')
            return None
    sys.meta_path.insert(0, BlockQt())
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_QT + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600)


def test_core_and_engines_import_without_qt():
    out = _run("""
        import pkgutil, importlib, aigc_desktop.core, aigc_desktop.engines
        failed = []
        count = 0
        for pkg in (aigc_desktop.core, aigc_desktop.engines):
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
                count += 1
                try:
                    importlib.import_module(info.name)
                except ImportError as exc:
                    failed.append(f'{info.name}: {exc}')
        assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt got imported'
        print(count)
        print('\\n'.join(failed))
        sys.exit(1 if failed else 0)
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(out.stdout.split()[0]) >= 10  # really walked the packages


def test_import_package_and_cli_loads_no_torch_and_no_qt():
    out = _run("""
        import aigc_desktop, aigc_desktop.cli, aigc_desktop.core.jobs, aigc_desktop.core.queue
        import aigc_desktop.core.settings, aigc_desktop.core.catalog, aigc_desktop.core.runner
        heavy = [m for m in ('torch', 'diffusers', 'transformers', 'PySide6') if m in sys.modules]
        print(heavy)
        sys.exit(1 if heavy else 0)
    """)
    assert out.returncode == 0, out.stdout + out.stderr


def test_offline_flags_set_on_import():
    out = subprocess.run([sys.executable, "-c", "import os, aigc_desktop; print(os.environ['HF_HUB_OFFLINE'], "
                          "os.environ['TRANSFORMERS_OFFLINE'])"], capture_output=True, text=True,
                         env={k: v for k, v in __import__('os').environ.items() if 'OFFLINE' not in k})
    assert out.stdout.split() == ["1", "1"]


# ------------------------------------------------------------------------------ static rules (ast, fast)
#
# The rules below read the sources with `ast` (every import, also those inside functions, except under
# `if TYPE_CHECKING:`), so they hold for code paths no test happens to run, and take well under a second.

import ast  # noqa: E402
import functools  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aigc_desktop"
QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "qtpy", "qtawesome")
HEAVY = ("torch", "torchvision", "diffusers", "transformers", "safetensors", "accelerate")


@functools.cache
def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@functools.cache
def _tree(name: str) -> ast.Module:
    return ast.parse(_modules()[name].read_text(encoding="utf-8"), filename=str(_modules()[name]))


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return skip


@functools.cache
def _imports(name: str) -> tuple[tuple[str, int], ...]:
    """(imported module, line) of every import in a module; `from pkg import sub` names pkg.sub when sub is
    a module of ours, else pkg; relative imports are resolved."""
    tree = _tree(name)
    skip = _type_checking_nodes(tree)
    is_package = _modules()[name].name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub if sub in _modules() else module, node.lineno))
    return tuple(out)


def _ours(target: str) -> str | None:
    """The module of ours an import loads (the nearest enclosing one that exists), or None."""
    while target and target not in _modules():
        target = target.rpartition(".")[0]
    return target or None


def _in(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _where(name: str, line: int) -> str:
    return f"{_modules()[name].relative_to(ROOT)}:{line}"


@functools.cache
def _graph() -> dict[str, frozenset[str]]:
    graph = {}
    for name in _modules():
        targets = {_ours(t) for t, _ in _imports(name) if _in(t, "aigc_desktop")}
        graph[name] = frozenset(t for t in targets if t and t != name)
    return graph


def _cycles() -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _cycle_with(*members: str) -> set[str] | None:
    for component in _cycles():
        if any(m in component for m in members):
            return component
    return None


def _forbidden_imports(packages: tuple[str, ...], banned: tuple[str, ...]) -> list[str]:
    return [f"{_where(name, line)} imports {target}" for name in _modules() if _in(name, *packages)
            for target, line in _imports(name) if target.split(".")[0] in banned]


def test_static_rules_really_read_the_package():
    assert len(_modules()) > 100 and "aigc_desktop.core.files" in _modules()
    assert any(t == "aigc_desktop.core.errors" for t, _ in _imports("aigc_desktop.core.safe_io"))
    assert _cycle_with("nothing.here") is None


def test_production_code_does_not_import_the_testing_package():
    bad = [f"{_where(name, line)} imports {target}" for name in _modules()
           if not _in(name, "aigc_desktop.testing")
           for target, line in _imports(name) if _in(target, "aigc_desktop.testing")]
    assert not bad, "\n".join(bad)


def test_core_imports_neither_qt_nor_torch():
    bad = _forbidden_imports(("aigc_desktop.core",), QT + HEAVY)
    assert not bad, "\n".join(bad)


def test_engines_import_no_qt():
    bad = _forbidden_imports(("aigc_desktop.engines",), QT)
    assert not bad, "\n".join(bad)


def test_no_argparse_front_inside_engines():
    """Command-line fronts live in aigc_desktop/cli*.py. Engines may name argparse.Namespace (StyleGAN-ADA
    checkpoints pickle one; the safe unpickler allows that class) but build no parser."""
    bad = []
    for name in _modules():
        if not _in(name, "aigc_desktop.engines"):
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.ImportFrom) and node.module == "argparse":
                bad += [f"{_where(name, node.lineno)}: from argparse import {a.name}" for a in node.names
                        if a.name != "Namespace"]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id == "argparse" and node.attr != "Namespace":
                bad.append(f"{_where(name, node.lineno)}: argparse.{node.attr}")
            elif isinstance(node, ast.Attribute) and node.attr in ("add_argument", "parse_args", "add_subparsers",
                                                                   "parse_known_args"):
                bad.append(f"{_where(name, node.lineno)}: .{node.attr}")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_the_cli_and_its_parts():
    """cli.py wires cli_stylegan / cli_interpolate in; they share helpers through cli_common, never cli."""
    assert _cycle_with("aigc_desktop.cli", "aigc_desktop.cli_stylegan", "aigc_desktop.cli_interpolate",
                       "aigc_desktop.cli_common") is None, _cycle_with("aigc_desktop.cli")


def test_no_import_cycle_inside_the_metadata_package():
    cycles = [c for c in _cycles() if any(_in(m, "aigc_desktop.core.metadata") for m in c)]
    assert not cycles, cycles


def test_diffusion_loader_and_single_file_loader_are_not_a_cycle():
    component = _cycle_with("aigc_desktop.engines.diffusion.loader", "aigc_desktop.engines.diffusion.single_file")
    assert component is None, component


def _calls(name: str):
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Call):
            yield node


def test_one_atomic_write_helper():
    """Saving goes through core/files.py (atomic_open / atomic_write / atomic_path; set_aside moves a broken file
    away): no other module renames files itself."""
    bad = []
    for name in _modules():
        if name == "aigc_desktop.core.files":
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil"):
                bad += [f"{_where(name, node.lineno)}: from {node.module} import {a.name}" for a in node.names
                        if a.name in ("replace", "rename", "renames", "move")]
        for call in _calls(name):
            func = call.func
            if not isinstance(func, ast.Attribute):
                continue
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if (owner == "os" and func.attr in ("replace", "rename", "renames")) or \
                    (owner == "shutil" and func.attr == "move") or \
                    (func.attr in ("replace", "rename") and len(call.args) == 1 and not call.keywords):
                # str.replace takes two arguments; a one-argument .replace / .rename is pathlib's rename
                bad.append(f"{_where(name, call.lineno)}: {ast.unparse(call)[:80]}")
    assert not bad, "\n".join(bad)


# Modules another change is converting (remove a name once its module uses core.errors.first_line).
FIRST_LINE_PENDING: set[str] = set()  # modules allowed their own copy for now: none


def test_one_first_line_helper():
    """The first line of an error's text comes from core.errors.first_line: no copy of it as a function and no
    inline str(exc).splitlines()[0]."""
    bad = []
    for name in _modules():
        if name == "aigc_desktop.core.errors" or name in FIRST_LINE_PENDING:
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    ("first_line" in node.name or "one_line" in node.name):
                bad.append(f"{_where(name, node.lineno)}: def {node.name}")
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Attribute) and node.value.func.attr in ("splitlines", "split") \
                    and isinstance(node.value.func.value, ast.Call) and \
                    isinstance(node.value.func.value.func, ast.Name) and node.value.func.value.func.id == "str" and \
                    isinstance(node.slice, ast.Constant) and node.slice.value == 0:
                bad.append(f"{_where(name, node.lineno)}: {ast.unparse(node)[:80]}")
    assert not bad, "\n".join(bad)
