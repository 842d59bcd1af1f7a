# Sourced by tests/run.sh: choose the Python the tests install into and run with, and put it first on PATH
# (the service scripts' `python3` then is the same one).
# - a .venv at the repository root (README's quick start makes one): use it;
# - else a system Python that refuses `pip install` (PEP 668: Debian/Ubuntu's EXTERNALLY-MANAGED marker):
#   make .venv (Debian's python3-venv provides ensurepip) and use it;
# - else (a CI image's own Python, pyenv, conda): use python3 as it is.
python_env() {
  local root=$1
  if [[ ! -x "$root/.venv/bin/python3" ]] && python3 -c '
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    echo "== system Python is externally managed (PEP 668): creating $root/.venv" >&2
    python3 -m venv "$root/.venv"
  fi
  if [[ -x "$root/.venv/bin/python3" ]]; then
    export PATH="$root/.venv/bin:$PATH"
    export VIRTUAL_ENV="$root/.venv"
  fi
}
