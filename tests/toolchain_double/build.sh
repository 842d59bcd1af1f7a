#!/usr/bin/env bash
# Builds the toolchain double images and publishes them to the local registry (127.0.0.1:5000), pinned
# by digest like production toolchains. Prints, for tests/run.sh to eval:
#   export TRTBUILD_TEST_TOOLCHAIN_DOUBLE='{"1.1.0": "127.0.0.1:5000/trtbuild-test/toolchain-double@sha256:…", …}'
# and a comment line per version with the pinned ref. Needs dockerd (tests/services/dockerd.sh) and the
# registry (tests/services/local_registry.sh start); creates the base image first when it is missing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
bash "$HERE/base_image.sh" >&2
cd "$ROOT"
refs="$(python3 -m tests.toolchain_double.publish --json "$@")"
compact="$(printf '%s' "$refs" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')"
printf "export TRTBUILD_TEST_TOOLCHAIN_DOUBLE='%s'\n" "$compact"
printf '%s' "$refs" | python3 -c 'import json,sys; [print(f"# {v} {r}") for v, r in json.load(sys.stdin).items()]'
