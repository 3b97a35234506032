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
