"""The package's modules import each other in one direction only (deferred imports inside
functions count too): scripts/import_cycles.py finds none."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_cycles.py"


def test_there_are_no_import_cycles():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "no import cycles"
