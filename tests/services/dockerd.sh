#!/usr/bin/env bash
# The Docker Engine for the tests. Installs nothing (CI installs docker.io first).
#   tests/services/dockerd.sh start   # start dockerd (own process session) unless the socket answers; wait
#   tests/services/dockerd.sh stop    # stop only a dockerd this script started (pid file), never another
# Env: TRTBUILD_TEST_DOCKERD_DIR (default /tmp/trtbuild-test-dockerd: pid file and log).
set -euo pipefail
DIR="${TRTBUILD_TEST_DOCKERD_DIR:-/tmp/trtbuild-test-dockerd}"
SOCK=/var/run/docker.sock
PIDFILE="$DIR/dockerd.pid"

answers() { docker -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
    if answers; then echo "dockerd already answers on $SOCK"; return 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install -y docker.io)" >&2; exit 1; }
    mkdir -p "$DIR"
    setsid dockerd --host "unix://$SOCK" --pidfile "$DIR/dockerd.daemon.pid" >>"$DIR/dockerd.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 120); do
        if answers; then echo "dockerd up on $SOCK (pid $(cat "$PIDFILE"))"; return 0; fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "dockerd exited; log:" >&2; tail -30 "$DIR/dockerd.log" >&2; exit 1
        fi
        sleep 0.5
    done
    echo "dockerd did not answer within 60 s; log: $DIR/dockerd.log" >&2; exit 1
}

stop() {
    [ -f "$PIDFILE" ] || { echo "dockerd was not started by this script; leaving it running"; return 0; }
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$PIDFILE"
    echo "dockerd stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
