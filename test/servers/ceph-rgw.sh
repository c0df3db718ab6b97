#!/usr/bin/env bash
# A real, strict S3 for the tests: a single-node Ceph RGW on loopback only.
#
#   ceph-rgw.sh install          install the Debian packages if they are missing
#   ceph-rgw.sh up DIR [--ldap]  bootstrap a fresh cluster in DIR, print its endpoint
#   ceph-rgw.sh down DIR         stop exactly what `up DIR` started
#   ceph-rgw.sh watch DIR        wait for stdin to close, then `down DIR` (a watchdog
#                                for test runners; see start-rgw.ts)
#
# One mon, one OSD on memstore (the data lives in the OSD's RAM), one radosgw
# (beast frontend), no mgr, no systemd, no cephadm. Everything (config, keyrings,
# logs, pid files, mon store) lives in DIR; every port is picked free at run time
# and bound to 127.0.0.1 only. The S3 user has the fixed keys S3RVER / S3RVER, the
# same as the s3rver test server, so tests share one set of credentials.
# With --ldap, a slapd on loopback holds the user ldapuser / ldappass and RGW's
# LDAP auth is on: DIR/ldap-token is the access key to use with any (even blank)
# secret, as OSiRIS-style sites hand out. See shared/notes/ceph-rgw.md.
#
# Output of `up`: exactly one line on stdout, the endpoint (http://127.0.0.1:PORT),
# also written to DIR/endpoint. Progress and errors go to stderr.
# Environment: RGW_UP_TIMEOUT (seconds to wait for S3, default 90),
# RGW_MEMSTORE_BYTES (nominal OSD capacity, default 4 GiB).
set -euo pipefail

readonly ACCESS_KEY=S3RVER
readonly SECRET_KEY=S3RVER
readonly LDAP_USER=ldapuser
readonly LDAP_PASS=ldappass
readonly LDAP_BASE=dc=s3mount,dc=test
readonly CEPH_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
readonly LDAP_PACKAGES=(slapd ldap-utils)

log() { printf 'ceph-rgw: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: ceph-rgw.sh install [--ldap]
       ceph-rgw.sh up DIR [--ldap]
       ceph-rgw.sh down DIR
       ceph-rgw.sh watch DIR
EOF
  exit 2
}

# ---------------------------------------------------------------- install

# True when every named package is installed (dpkg's status, not just a binary on PATH).
installed() {
  local pkg
  for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] || return 1
  done
}

cmd_install() {
  local pkgs=("${CEPH_PACKAGES[@]}")
  # slapd and the LDAP client tools only for `up --ldap`.
  [[ "${1:-}" == "--ldap" ]] && pkgs+=("${LDAP_PACKAGES[@]}")
  if installed "${pkgs[@]}"; then
    log "packages already installed: ${pkgs[*]}"
    return 0
  fi
  [[ $EUID -eq 0 ]] || die "installing packages needs root (apt-get install ${pkgs[*]})"
  # noninteractive: slapd's postinst would otherwise ask for an admin password. Its
  # default database is never used (up runs its own slapd from DIR).
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine: update only then,
  # since it costs time and network.
  local pkg missing=0
  for pkg in "${pkgs[@]}"; do
    apt-cache show "$pkg" >/dev/null 2>&1 || missing=1
  done
  if [[ $missing -eq 1 ]]; then
    log "apt-get update (a package is not in the lists)"
    apt-get update >&2
  fi
  log "apt-get install ${pkgs[*]}"
  apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
}

# ---------------------------------------------------------------- helpers for up

# Ports. The daemons bind them seconds after they are picked, so they are taken
# below the kernel's ephemeral range (ip_local_port_range): there, no outgoing
# connection of this machine (ceph's own included) can take one meanwhile, and only
# a program binding that very port could clash. Each `up` picks a random block.

# The local ports in use, one a line: sockets in any state (ss), else nothing (then
# port_free falls back to trying to connect).
used_ports() {
  if command -v ss >/dev/null; then
    ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un
  fi
}

# True when nothing uses port $1 on this machine (per $USED, else by connecting).
port_free() {
  if [[ -n "$USED" ]]; then
    if grep -qx "$1" <<<"$USED"; then return 1; fi
  elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    return 1
  fi
  return 0
}

# Prints BASE, the first of a block of 20 ports of which BASE..BASE+3 (mon, radosgw,
# slapd, spare) are free and at least 8 of BASE+4..BASE+19 (the OSD's range: msgr2
# binds 4 there, taking the first free ones, so a few busy ones are harmless).
free_block() {
  local low top base p free
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  top=$(( low - 20 ))
  (( top > 11000 )) || top=30000 # an odd kernel setting: then just stay in 10000-30000
  USED=$(used_ports)
  for _ in $(seq 1 100); do
    base=$(( 10000 + RANDOM % (top - 10000) ))
    free=0
    for (( p = base; p < base + 4; p++ )); do port_free "$p" && free=$((free + 1)); done
    (( free == 4 )) || continue
    free=0
    for (( p = base + 4; p < base + 20; p++ )); do port_free "$p" && free=$((free + 1)); done
    if (( free >= 8 )); then
      echo "$base"
      return 0
    fi
  done
  die "no block of free loopback ports found"
}

# Starts "$@" in its own session (so a terminal's or test runner's signals do not
# reach it, and down can stop it alone), logging to DIR/log/NAME.out, and records its
# pid in DIR/run/NAME.pid. The daemons run in the foreground (-f/-d) so that the
# recorded pid is the daemon itself.
start_daemon() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
}

# Dies with the tail of every log when the daemon $1 is no longer running.
check_alive() {
  local pid
  pid=$(cat "$DIR/run/$1.pid")
  kill -0 "$pid" 2>/dev/null || fail "$1 exited during start"
}

# The tail of every log, on stderr: what a failed start needs to be explained.
show_logs() {
  local f
  for f in "$DIR"/log/*; do
    [[ -s "$f" ]] || continue
    log "---- tail of $f"
    tail -n 20 "$f" >&2
  done
}

# Fails `up`: shows the logs and stops whatever was started, leaving no process behind.
fail() {
  log "error: $*"
  show_logs
  cmd_down "$DIR" || true
  exit 1
}

# `ceph` with this cluster's config and admin key, bounded: with the mon down it would
# otherwise retry for ever.
ceph_admin() {
  ceph -c "$DIR/ceph.conf" --connect-timeout 15 "$@"
}

# Waits up to $2 seconds for the command "${@:3}" to succeed, checking daemon $1.
wait_for() {
  local daemon=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [[ -z "$daemon" ]] || check_alive "$daemon"
    (( SECONDS < deadline )) || fail "timed out after ${seconds}s waiting for: $*"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- up

cmd_up() {
  local ldap=0
  [[ "${2:-}" == "--ldap" ]] && ldap=1
  local timeout=${RGW_UP_TIMEOUT:-90}
  local memstore_bytes=${RGW_MEMSTORE_BYTES:-4294967296}
  local started=$SECONDS

  local pkgs=("${CEPH_PACKAGES[@]}")
  (( ldap )) && pkgs+=("${LDAP_PACKAGES[@]}")
  installed "${pkgs[@]}" || die "missing packages: run '$0 install' (needs ${pkgs[*]})"

  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  # A DIR that still runs a cluster would be clobbered: refuse, down it first.
  local f
  for f in "$DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    kill -0 "$(cat "$f")" 2>/dev/null && die "$DIR already runs $(basename "$f" .pid): '$0 down $DIR' first"
  done
  # Fresh state every time: a cluster is cheap to make and memstore keeps nothing anyway.
  rm -rf "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/log" "$DIR/ldap" "$DIR/endpoint" "$DIR/ldap-token"
  mkdir -p "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/run" "$DIR/log" "$DIR/rgw"

  local fsid base mon_port rgw_port ldap_port osd_base
  fsid=$(cat /proc/sys/kernel/random/uuid)
  base=$(free_block)
  mon_port=$base
  rgw_port=$((base + 1))
  ldap_port=$((base + 2))
  # The OSD (msgr2 only) binds 4 ports: public, cluster, 2 heartbeats; 16 give slack.
  osd_base=$((base + 4))

  # --- config. Values that matter:
  # - msgr2 only, everything on 127.0.0.1, OSD ports in our own free range;
  # - pools of size 1 with 8 PGs and no autoscaling (there is no mgr to autoscale);
  # - memstore: no disk, RAM only, nominal size for "full" accounting;
  # - small thread pool for radosgw (default 512 threads);
  # - everything (logs, sockets, pid files) in DIR, nothing in /var or /etc.
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = [v2:127.0.0.1:$mon_port]
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms bind port min = $osd_base
ms bind port max = $((osd_base + 15))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/\$name.keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
# Only errors in the logs: debug output would dominate the run's I/O.
debug ms = 0
debug monc = 0
debug auth = 0
debug osd = 0
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $memstore_bytes
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
auth allow insecure global id reclaim = false
# One small OSD: do not let the default PG-per-OSD limit refuse rgw's pools.
mon max pg per osd = 1000
# The mon batches map changes for 1 s by default, and radosgw's first start makes
# some ten of them one after the other (a pool, its application tag...): up takes
# ~14 s with the default and ~3.5 s with this. A lone mon has no peers to spare.
paxos propose interval = 0.1
paxos min wait = 0.01
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw thread pool size = 32
# The lifecycle thread sleeps 5 s at a time and radosgw waits for it on SIGTERM:
# without it down takes 0.5 s instead of 5. Lifecycle rules are still stored (they
# would only run in the small hours anyway); garbage collection stays on.
rgw enable lc threads = false
rgw data = $DIR/rgw
# Pools are created on first start: it is most of up's time.
rgw init timeout = $timeout
EOF

  if (( ldap )); then
    # RGW binds as the directory's admin to find the user's DN (uid=ID under the
    # search base), then binds as that DN with the token's password.
    cat >>"$DIR/ceph.conf" <<EOF
rgw s3 auth use ldap = true
rgw ldap uri = ldap://127.0.0.1:$ldap_port
rgw ldap binddn = cn=admin,$LDAP_BASE
rgw ldap secret = $DIR/ldap/bindpass
rgw ldap searchdn = ou=people,$LDAP_BASE
rgw ldap dnattr = uid
EOF
  fi

  # --- keys. All entities go into the mon's initial keyring, so that `ceph-mon --mkfs`
  # registers them with their caps: no `ceph auth add` round trips, and the OSD's key
  # exists before its mkfs (which fails fetching its config otherwise).
  ceph-authtool --create-keyring "$DIR/mon..keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/osd.0.keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/client.rgw.a.keyring" --gen-key -n client.rgw.a \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  for f in client.admin osd.0 client.rgw.a; do
    ceph-authtool "$DIR/mon..keyring" --import-keyring "$DIR/$f.keyring" >/dev/null
  done
  # (mkfs copies the keyring into the mon's store; the mon reads it from there.)

  # --- mon
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null 2>&1 \
    || die "monmaptool failed"
  ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon..keyring" \
    >>"$DIR/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
  start_daemon mon.a ceph-mon -c "$DIR/ceph.conf" -f -i a
  log "mon on 127.0.0.1:$mon_port"
  wait_for mon.a 30 ceph_admin mon stat

  # --- osd
  local osd_uuid osd_id
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph_admin osd new "$osd_uuid") || fail "ceph osd new failed"
  [[ "$osd_id" == 0 ]] || fail "unexpected OSD id '$osd_id'"
  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$DIR/log/mkfs.out" 2>&1 || fail "ceph-osd --mkfs failed"
  start_daemon osd.0 ceph-osd -c "$DIR/ceph.conf" -f -i 0
  log "osd on 127.0.0.1:$osd_base-$((osd_base + 15))"
  wait_for osd.0 60 osd_up

  # --- slapd (before radosgw, which connects to it at start)
  if (( ldap )); then
    start_slapd "$ldap_port"
  fi

  # --- radosgw
  start_daemon rgw.a radosgw -c "$DIR/ceph.conf" -f -n client.rgw.a
  log "radosgw on 127.0.0.1:$rgw_port"
  local endpoint="http://127.0.0.1:$rgw_port"
  local remaining=$(( timeout - (SECONDS - started) ))
  (( remaining > 5 )) || remaining=5
  wait_for rgw.a "$remaining" curl -sf -o /dev/null --max-time 5 "$endpoint/"

  # --- the S3 user, with the shared fixed keys. Made once RGW has created its pools
  # and zone, so radosgw-admin does not race it doing so.
  radosgw-admin -c "$DIR/ceph.conf" user create --uid=s3mount --display-name=s3mount \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user.json" 2>>"$DIR/log/radosgw-admin.out" \
    || fail "radosgw-admin user create failed"
  # Signed request with those keys: proves the user is usable before saying so.
  wait_for rgw.a 30 signed_list_buckets "$endpoint"

  if (( ldap )); then
    # The token is base64 of {"RGW_TOKEN":{"type":"ldap","id":USER,"key":PASS}}; the
    # tool reads USER and PASS from the environment. It needs a config but no mon.
    RGW_ACCESS_KEY_ID=$LDAP_USER RGW_SECRET_ACCESS_KEY=$LDAP_PASS \
      radosgw-token -c "$DIR/ceph.conf" --no-mon-config --encode --ttype=ldap \
      >"$DIR/ldap-token" 2>>"$DIR/log/radosgw-token.out" || fail "radosgw-token failed"
    log "ldap token for $LDAP_USER: $(cat "$DIR/ldap-token")"
  fi

  echo "$endpoint" >"$DIR/endpoint"
  log "up in $((SECONDS - started))s"
  echo "$endpoint"
}

# The OSD is up and in (ceph osd stat works without a mgr, unlike ceph osd df).
osd_up() {
  ceph_admin osd stat -f json | grep -q '"num_up_osds":1'
}

# ListBuckets signed with the test keys (curl's SigV4), to prove the user works.
# curl 7.88 does not send x-amz-content-sha256, which RGW needs to check a SigV4
# signature (403 SignatureDoesNotMatch without it): send it, curl signs it.
signed_list_buckets() {
  curl -sf -o /dev/null --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --user "$ACCESS_KEY:$SECRET_KEY" "$1/"
}

start_slapd() {
  local port=$1 l="$DIR/ldap"
  mkdir -p "$l/data"
  # Bind password for RGW's service account: a file, read by RGW (no newline).
  printf '%s' adminpass >"$l/bindpass"
  chmod 600 "$l/bindpass"
  # A self-contained slapd.conf (not Debian's cn=config in /etc): mdb database in DIR.
  cat >"$l/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $l/slapd.pid
argsfile $l/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "$LDAP_BASE"
rootdn "cn=admin,$LDAP_BASE"
rootpw adminpass
directory $l/data
EOF
  cat >"$l/base.ldif" <<EOF
dn: $LDAP_BASE
objectClass: dcObject
objectClass: organization
o: s3mount tests
dc: s3mount

dn: ou=people,$LDAP_BASE
objectClass: organizationalUnit
ou: people

dn: uid=$LDAP_USER,ou=people,$LDAP_BASE
objectClass: inetOrgPerson
uid: $LDAP_USER
cn: LDAP test user
sn: user
userPassword: $LDAP_PASS
EOF
  slapadd -f "$l/slapd.conf" -l "$l/base.ldif" >>"$DIR/log/slapd.out" 2>&1 || fail "slapadd failed"
  # -d 0: stay in the foreground (the recorded pid is slapd's), without debug output.
  start_daemon slapd slapd -f "$l/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0
  log "slapd on 127.0.0.1:$port"
  wait_for slapd 15 ldapwhoami -x -H "ldap://127.0.0.1:$port/" \
    -D "uid=$LDAP_USER,ou=people,$LDAP_BASE" -w "$LDAP_PASS"
}

# ---------------------------------------------------------------- down

# Stops the daemons recorded in DIR/run/*.pid (radosgw first, the mon last: the
# clients go before the servers they talk to), waits for each to exit, and kills it
# if it has not within 10 s. Nothing recorded, or already gone: nothing to do.
cmd_down() {
  local dir=$1 name pidfile pid
  [[ -d "$dir/run" ]] || return 0
  for name in rgw.a slapd osd.0 mon.a; do
    pidfile="$dir/run/$name.pid"
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    # Only a process that is still this daemon: a recycled pid is someone else's.
    if [[ -n "$pid" ]] && is_ours "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      local waited=0
      while is_running "$pid" && (( waited < 100 )); do
        sleep 0.1
        waited=$((waited + 1))
      done
      if is_running "$pid"; then
        log "$name ($pid) did not stop in 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while is_running "$pid"; do sleep 0.1; done
      fi
    fi
    rm -f "$pidfile"
  done
}

# True while $1 runs (a zombie has exited: it holds no port or memory, and this
# machine's init reaps orphans late, so it does not count).
is_running() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ "$state" != Z* ]]
}

# True when pid $1 is the daemon $2 that up started (checked by its command line).
is_ours() {
  local args prog
  args=$(ps -o args= -p "$1" 2>/dev/null) || return 1
  case "$2" in
    rgw.a) prog=radosgw ;;
    osd.0) prog=ceph-osd ;;
    mon.a) prog=ceph-mon ;;
    slapd) prog=slapd ;;
  esac
  [[ "$args" == *"$prog"* ]]
}

# ---------------------------------------------------------------- watch

# Blocks until stdin closes (or a SIGTERM/SIGHUP/SIGINT), then runs `down DIR`. A test
# runner starts it with a pipe it holds (test/servers/start-rgw.ts): when the runner
# dies, however it dies, the pipe closes and the cluster is stopped, since the
# daemons themselves run in their own sessions and would otherwise stay.
cmd_watch() {
  # `cat` in the background and `wait`: a trapped signal interrupts `wait` at once.
  # (<&0: a background command's stdin is otherwise /dev/null in a script.)
  cat <&0 >/dev/null &
  local reader=$!
  trap 'kill "$reader" 2>/dev/null || true; cmd_down "$DIR"; exit 0' TERM HUP INT
  wait "$reader" || true
  cmd_down "$DIR"
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || usage
case "$1" in
  install)
    shift
    cmd_install "$@"
    ;;
  up)
    [[ $# -ge 2 ]] || usage
    DIR=$2
    cmd_up "$2" "${3:-}"
    ;;
  down)
    [[ $# -eq 2 ]] || usage
    DIR=$2
    cmd_down "$2"
    ;;
  watch)
    [[ $# -eq 2 ]] || usage
    DIR=$2
    cmd_watch
    ;;
  *) usage ;;
esac
