"""Builds the component: `python build.py` writes `my-plugin.wasm` (or the path given as the
first argument), with the componentize-py of the virtual environment this Python runs in:

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python build.py
"""

import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "my-plugin.wasm"))
tool = os.path.join(os.path.dirname(sys.executable), "componentize-py")

command = [
    tool,
    "--wit-path", os.path.join(here, "wit"),
    "--world", "resolver-plugin",
    "--quiet",
    "componentize", "app",
    "--python-path", os.path.join(here, "src"),
    "--output", out,
]
sys.exit(subprocess.run(command, cwd=here).returncode)
