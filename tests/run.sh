#!/usr/bin/env bash
# The test command (README "Quick start"): installs what the tests need (Python packages at the exact
# versions of tests/constraints.txt), lints (ruff check, ruff format --check, mypy: a finding fails the run),
# starts the real services the tests talk to (Docker Engine, PostgreSQL, a Ceph RADOS Gateway S3 server, a
# local image registry, a one-node Slurm cluster), runs pytest, and stops what it started. Idempotent: on a
# machine that already has the packages it only lints and starts services.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive

apt_packages=(docker.io postgresql debootstrap docker-registry ceph-mon ceph-osd radosgw ceph-common rclone
              slurmctld slurmd slurm-client munge python3-venv)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "== installing Debian packages: ${missing[*]}"
  apt-get update -q
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

source tests/python_env.sh
python_env "$ROOT"
echo "== installing Python packages into $(command -v python3) (exact versions: tests/constraints.txt)"
# torch first, pinned to the CPU build available here; the rest must not pull a CUDA torch.
python3 -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null \
  || python3 -m pip install -q -c tests/constraints.txt torch==2.13.0
python3 -m pip install -q -c tests/constraints.txt -e ".[quantize,postgres,farm,test]" "torch==2.13.0"

echo "== lint: ruff check, ruff format --check, mypy (trtbuild/ and registry/; config in pyproject.toml)"
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy

echo "== ModelOpt + transformers of each pinned toolchain (venvs reusing the CPU torch, cached)"
python3 -m tests.quantize.venvs   # /var/cache/trtbuild-test/modelopt-venvs; a few minutes the first time

STATE=$(mktemp -d /tmp/trtbuild-ci.XXXXXX)
chmod 755 "$STATE"   # PostgreSQL runs as the postgres user and needs to reach its data dir inside
export TRTBUILD_TEST_STATE=$STATE
SERVICES=(dockerd postgres ceph_rgw local_registry slurm)
cleanup() {
  set +e
  for svc in "${SERVICES[@]}"; do
    bash "tests/services/$svc.sh" stop "$STATE/$svc" >/dev/null 2>&1
  done
  rm -rf "$STATE"
}
trap cleanup EXIT

# A service's default port when it is free, else any free port: a PostgreSQL or Ceph left running on this
# machine (another checkout's tests) must not fail this run.
port() {
  python3 - "$1" <<'PY'
import socket, sys
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return None
        return s.getsockname()[1]
print(free(int(sys.argv[1])) or free(0))
PY
}
PG_PORT=$(port 55432)
RGW_PORT=$(port 7480)
MON_PORT=$(port 3300)
export TRTBUILD_TEST_SLURM_PORTS="$(port 16817)-$(port 16818)"
declare -A SERVICE_ARGS=([postgres]="$PG_PORT" [ceph_rgw]="$RGW_PORT $MON_PORT")

echo "== starting services"
for svc in "${SERVICES[@]}"; do
  # each start script takes its own state dir and prints `export VAR=...` lines for the tests
  # shellcheck disable=SC2086 # the ports are words
  exports=$(bash "tests/services/$svc.sh" start "$STATE/$svc" ${SERVICE_ARGS[$svc]:-}) \
    || { echo "could not start $svc" >&2; exit 1; }
  eval "$exports"
done
echo "== building the toolchain double (test fixture image)"
exports=$(bash tests/toolchain_double/build.sh) || { echo "could not build the toolchain double" >&2; exit 1; }
eval "$exports"

echo "== running tests"
set +e
python3 -m pytest tests "$@"
rc=$?
set -e
exit $rc
