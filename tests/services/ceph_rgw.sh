#!/usr/bin/env bash
# Start/stop a single-node Ceph cluster with a RADOS Gateway (S3) on 127.0.0.1 for tests and benchmarks.
#
#   tests/services/ceph_rgw.sh start DIR [PORT] [MON_PORT]   # prints the exports the tests read
#   tests/services/ceph_rgw.sh stop  DIR                      # stops by pid files, removes DIR (block file too)
#
# Debian packages: ceph-mon ceph-osd radosgw ceph-common. One monitor (msgr2 only, cephx) on
# 127.0.0.1:MON_PORT (default 3300), one BlueStore OSD on a sparse block file DIR/osd/block
# (CEPH_BLOCK_GIB, default 16), pool size 1, no mgr, beast frontend on 127.0.0.1:PORT (default 7480).
# Every path (config, keyrings, run dir, logs, admin sockets, data) lives under DIR.
# Prints: TRTBUILD_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
# TRTBUILD_TEST_S3_BUCKET (created here). `stop` removes DIR, which frees the block file.
set -euo pipefail

cmd=${1:?usage: ceph_rgw.sh start|stop DIR [PORT] [MON_PORT]}
dir=${2:?usage: ceph_rgw.sh start|stop DIR [PORT] [MON_PORT]}
port=${3:-7480}
mon_port=${4:-3300}
block_gib=${CEPH_BLOCK_GIB:-16}
access_key=${CEPH_TEST_ACCESS_KEY:-TRTBUILDTESTKEY00001}
secret_key=${CEPH_TEST_SECRET_KEY:-trtbuildtestsecret0000000000000000000001}
bucket=${CEPH_TEST_BUCKET:-trtbuild-test}
conf="$dir/ceph.conf"
C=(--conf "$conf")

log() { echo "ceph_rgw.sh: $*" >&2; }

stop_pid() {  # stop a daemon by its pid file: TERM, then KILL after 20 s
  local f=$1 pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

if [[ $cmd == stop ]]; then
  for f in "$dir"/run/client.rgw.*.pid "$dir"/run/osd.*.pid "$dir"/run/mon.*.pid; do stop_pid "$f"; done
  rm -rf "$dir"
  exit 0
fi
[[ $cmd == start ]] || { echo "usage: ceph_rgw.sh start|stop DIR [PORT] [MON_PORT]" >&2; exit 2; }

if [[ -f $dir/run/client.rgw.a.pid ]] && kill -0 "$(cat "$dir/run/client.rgw.a.pid")" 2>/dev/null; then
  log "already running in $dir"
else
  [[ -e $dir ]] && { log "$dir exists but no gateway runs there: stop it first"; exit 1; }
  mkdir -p "$dir"/{run,log,mon,osd,rgw}
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/\$cluster.\$name.keyring
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
log file = $dir/log/\$cluster-\$name.log
pid file = $dir/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
[mon]
mon data = $dir/mon/\$cluster-\$id
[osd]
osd data = $dir/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block path = $dir/osd/block
bluestore block create = true
bluestore block size = $((block_gib << 30))
bluestore fsck on mount = false
osd memory target = 1073741824
bluestore cache autotune = false
bluestore cache size = 268435456
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
rgw thread pool size = 64
# reclaim the space of deleted objects within seconds (default: 2 h), so tests and benchmarks do not fill the OSD
rgw gc obj min wait = 0
rgw gc processor period = 5
rgw gc processor max time = 5
CONF
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/ceph.client.admin.keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" 2>>"$dir/log/setup.log"
  ceph-mon "${C[@]}" -i a 2>>"$dir/log/setup.log"
  for _ in $(seq 1 100); do ceph "${C[@]}" --connect-timeout 5 mon stat >/dev/null 2>&1 && break; sleep 0.3; done
  ceph "${C[@]}" mon stat >/dev/null

  osd_secret=$(ceph-authtool --gen-print-key)
  osd_id=$(echo "{\"cephx_secret\": \"$osd_secret\"}" | ceph "${C[@]}" osd new "$(python3 -c 'import uuid; print(uuid.uuid4())')" -i - )
  mkdir -p "$dir/osd/ceph-$osd_id"
  ceph-authtool --create-keyring "$dir/osd/ceph-$osd_id/keyring" --name "osd.$osd_id" --add-key "$osd_secret" >/dev/null
  cp "$dir/osd/ceph-$osd_id/keyring" "$dir/ceph.osd.$osd_id.keyring"
  ceph-osd "${C[@]}" -i "$osd_id" --mkfs --osd-uuid "$(ceph "${C[@]}" osd dump -f json | python3 -c \
    "import json,sys; print([o['uuid'] for o in json.load(sys.stdin)['osds'] if o['osd']==$osd_id][0])")" >/dev/null 2>&1
  ceph-osd "${C[@]}" -i "$osd_id" 2>>"$dir/log/setup.log"
  for _ in $(seq 1 200); do
    ceph "${C[@]}" osd stat -f json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["num_up_osds"]>=1 else 1)' && break
    sleep 0.3
  done

  ceph "${C[@]}" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$dir/ceph.client.rgw.a.keyring"
  radosgw "${C[@]}" -n client.rgw.a
  ok=
  for _ in $(seq 1 300); do
    if python3 - "$port" <<'PY' 2>/dev/null; then ok=1; break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2)
PY
    sleep 0.3
  done
  [[ -n $ok ]] || { log "gateway did not answer on 127.0.0.1:$port"; tail -n 40 "$dir/log/ceph-client.rgw.a.log" >&2; exit 1; }
  radosgw-admin "${C[@]}" -n client.admin user create --uid=trtbuild-test --display-name="trtbuild tests" \
    --access-key="$access_key" --secret="$secret_key" >/dev/null
fi

# no CA bundle for plain http (an empty AWS_CA_BUNDLE is an error since botocore 1.44: unset it)
env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" \
  python3 - "$port" "$bucket" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
try:
    s3.create_bucket(Bucket=sys.argv[2])
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
PY
cat <<OUT
export TRTBUILD_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$access_key
export AWS_SECRET_ACCESS_KEY=$secret_key
export AWS_DEFAULT_REGION=us-east-1
export TRTBUILD_TEST_S3_BUCKET=$bucket
OUT
