#!/usr/bin/env bash
# A Docker distribution registry (Debian package docker-registry, v2) on 127.0.0.1:5000 for the tests:
# the toolchain double is pushed there so it has a real RepoDigest and is pinned like production images.
# No TLS: the Docker Engine treats 127.0.0.0/8 as an insecure-allowed registry by default.
#
#   tests/services/local_registry.sh start|stop|status [STATE_DIR]
# start prints `export TRTBUILD_TEST_REGISTRY=127.0.0.1:5000` on stdout (tests/run.sh evals it); messages
# go to stderr. Files (config, storage, log, pid) live in STATE_DIR/registry when given, else in
# $TRTBUILD_TEST_REGISTRY_DIR, else /tmp/trtbuild-test-registry. Address: $TRTBUILD_TEST_REGISTRY_ADDR
# (default 127.0.0.1:5000). Installs nothing: CI installs the package first (apt-get install -y docker-registry).
set -euo pipefail
if [ -n "${2:-}" ]; then DIR="$2/registry"; else DIR="${TRTBUILD_TEST_REGISTRY_DIR:-/tmp/trtbuild-test-registry}"; fi
ADDR="${TRTBUILD_TEST_REGISTRY_ADDR:-127.0.0.1:5000}"
PIDFILE="$DIR/registry.pid"

answers() { python3 - "$ADDR" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
PY
}

start() {
    if answers; then echo "registry already answers at http://$ADDR/v2/" >&2; echo "export TRTBUILD_TEST_REGISTRY=$ADDR"; return 0; fi
    command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install -y docker-registry)" >&2; exit 1; }
    mkdir -p "$DIR/data"
    cat > "$DIR/config.yml" <<YML
version: 0.1
log:
  level: warn
  fields:
    service: trtbuild-test-registry
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
YML
    setsid docker-registry serve "$DIR/config.yml" >>"$DIR/registry.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 100); do
        if answers; then
            echo "registry up at http://$ADDR/v2/ (pid $(cat "$PIDFILE"), storage $DIR/data)" >&2
            echo "export TRTBUILD_TEST_REGISTRY=$ADDR"; return 0
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "registry exited; log:" >&2; tail -20 "$DIR/registry.log" >&2; exit 1
        fi
        sleep 0.1
    done
    echo "registry did not answer within 10 s; log: $DIR/registry.log" >&2; exit 1
}

stop() {
    [ -f "$PIDFILE" ] || { echo "no registry started by this script ($PIDFILE missing)" >&2; return 0; }
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
    echo "registry stopped (storage kept in $DIR/data)" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if answers; then echo "up"; else echo "down"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
