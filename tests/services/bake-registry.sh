#!/usr/bin/env bash
# Start a local OCI image registry (Debian package docker-registry, distribution v2) for the `bake --push` test.
# usage: tests/services/bake-registry.sh start|stop [DIR]   (DIR default /tmp/trtbuild-bake-registry)
# env:   TRTBUILD_TEST_REGISTRY_PORT (default 5057). Listens on 127.0.0.1 only; the Docker Engine pushes to
#        127.0.0.0/8 over plain HTTP without extra daemon configuration.
# The test reads TRTBUILD_TEST_REGISTRY=127.0.0.1:<port> when the registry is already running.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:-/tmp/trtbuild-bake-registry}
port=${TRTBUILD_TEST_REGISTRY_PORT:-5057}
case "$cmd" in
  start)
    command -v docker-registry >/dev/null || { echo "docker-registry not installed (apt-get install -y docker-registry)" >&2; exit 1; }
    mkdir -p "$dir/data"
    cat > "$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CFG
    setsid docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 < /dev/null &
    echo $! > "$dir/registry.pid"
    for _ in $(seq 1 50); do
      if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null; then
        echo "127.0.0.1:$port"; exit 0
      fi
      sleep 0.2
    done
    echo "registry did not come up; see $dir/registry.log" >&2; exit 1 ;;
  stop)
    if [ -f "$dir/registry.pid" ]; then kill "$(cat "$dir/registry.pid")" 2>/dev/null || true; rm -f "$dir/registry.pid"; fi ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
