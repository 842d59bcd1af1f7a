#!/usr/bin/env bash
# The Docker Engine for the tests. Installs nothing (CI installs docker.io first).
#   tests/services/dockerd.sh start [STATE_DIR]  # start dockerd (own session) unless the socket answers; wait
#   tests/services/dockerd.sh stop [STATE_DIR]   # stop only a dockerd this script started (pid file)
# start prints `export DOCKER_HOST=unix:///var/run/docker.sock` on stdout (tests/run.sh evals it);
# messages go to stderr. Pid file and log: STATE_DIR/dockerd when given, else $TRTBUILD_TEST_DOCKERD_DIR,
# else /tmp/trtbuild-test-dockerd.
set -euo pipefail
if [ -n "${2:-}" ]; then DIR="$2/dockerd"; else DIR="${TRTBUILD_TEST_DOCKERD_DIR:-/tmp/trtbuild-test-dockerd}"; fi
SOCK=/var/run/docker.sock
PIDFILE="$DIR/dockerd.pid"

answers() { docker -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
    if answers; then echo "dockerd already answers on $SOCK" >&2; echo "export DOCKER_HOST=unix://$SOCK"; return 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install -y docker.io)" >&2; exit 1; }
    mkdir -p "$DIR"
    setsid dockerd --host "unix://$SOCK" --pidfile "$DIR/dockerd.daemon.pid" >>"$DIR/dockerd.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 120); do
        if answers; then echo "dockerd up on $SOCK (pid $(cat "$PIDFILE"))" >&2; echo "export DOCKER_HOST=unix://$SOCK"; return 0; fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "dockerd exited; log:" >&2; tail -30 "$DIR/dockerd.log" >&2; exit 1
        fi
        sleep 0.5
    done
    echo "dockerd did not answer within 60 s; log: $DIR/dockerd.log" >&2; exit 1
}

stop() {
    [ -f "$PIDFILE" ] || { echo "dockerd was not started by this script; leaving it running" >&2; return 0; }
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$PIDFILE"
    echo "dockerd stopped" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
