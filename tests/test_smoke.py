def test_package_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, aigc_desktop, aigc_desktop.core.jobs, aigc_desktop.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
