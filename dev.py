#!/usr/bin/env python3
"""Set-up and entry point on a fresh machine that has only Python 3.11+.

    python3 dev.py run      # create .venv if missing, install, then `masivo up`
    python3 dev.py test     # create/update .venv, install, run the whole test suite
    python3 dev.py lint     # ruff check, ruff format --check, lint-imports

Uses only the standard library: it must work before anything is installed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".masivo-installed"


def _install_fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py may run on an older Python)
        sys.exit(f"Masivo needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _install_fingerprint():
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(_install_fingerprint())


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in {"run", "test", "lint", "install"}:
        print(__doc__)
        return 0 if command == "help" else 2
    install()
    os.chdir(ROOT)
    if command == "run":
        os.execv(BIN / "masivo", [str(BIN / "masivo"), "up", *argv[1:]])
    if command == "test":
        os.execv(BIN / "masivo", [str(BIN / "masivo"), "test", *argv[1:]])
    if command == "lint":
        for tool in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["lint-imports"]):
            result = subprocess.run([str(BIN / tool[0]), *tool[1:]], check=False)
            if result.returncode:
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
