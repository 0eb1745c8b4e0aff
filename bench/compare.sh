#!/usr/bin/env bash
# bench/compare.sh: flagscan against nmap -T4, masscan and zmap on the same
# jobs, one after the other, in one run, in a lab of network namespaces that
# this script builds and removes.
#
#   sudo bash bench/compare.sh
#
# Network rule: every probe goes to an address that exists only inside a
# namespace created here (the flagscan lab 10.213.x.x and its IPv6 twin
# fd00:213:x::, a /16 of local addresses 10.214.0.0/16 behind a veth, a
# lossy host 10.213.1.9; for job 13 a /8, 10.0.0.0/8, routed from a scanner
# namespace of its own to a namespace that drops it). The scanner
# namespaces have no default route (IPv4
# or IPv6) and no link to the host's own network, so nothing can leave it.
# Every tool runs under `timeout`; an EXIT trap removes the lab and the
# namespaces whatever happens.
#
# Environment (all optional):
#   FSBENCH_PREFIX   namespace prefix (default fsbench)
#   FSBENCH_KEEP=1   keep the raw outputs (work directory) after the run
#   FSBENCH_RATE     masscan --rate and zmap -r (default 300000)
#   FSBENCH_NO_BUILD=1  use target/release/flagscan as it is
#   FSBENCH_JOBS     the jobs to run, by number, e.g. "12" or "1,12"
#                    (default: all, 1-13); the lab is built whole either way,
#                    and the targets summary has only the lines of the jobs run
#   CARGO_TARGET_DIR where the build goes and the binary is taken from
#                    (default target/ under the repository)
#
# Output: machine info, one table per job, then the issue's targets with
# what this run measured. See docs/performance.md for a recorded run.

set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
    echo "compare.sh: run as root (network namespaces, raw sockets): sudo bash bench/compare.sh" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PREFIX=${FSBENCH_PREFIX:-fsbench}
RATE=${FSBENCH_RATE:-300000}
SCAN_NS=$PREFIX-scan
GW_NS=$PREFIX-gw
WEB_NS=$PREFIX-web
FWD_NS=$PREFIX-fwd
REJ_NS=$PREFIX-rej
LAN_NET=10.213.1.0/24
FAR_NET=10.213.2.0/24
RSTLIM_IP=10.213.1.4
FWD_IP=10.213.1.5
REJ_IP=10.213.1.6
SWEEP_NS=$PREFIX-sweep
LOSS_NS=$PREFIX-loss
S8_NS=$PREFIX-s8   # job 13: a scanner with a route for 10.0.0.0/8 only
K8_NS=$PREFIX-k8   # job 13: where that route leads; it forwards nothing
WEB=10.213.1.2
SCAN_IP=10.213.1.1
LOSS_IP=10.213.1.9
SWEEP_NET=10.214.0.0/16
SRC_POOL=10.213.3.1-16 # the lab scanner's extra addresses
SWEEP_HOSTS=65536
SW_SCAN_IP=10.215.0.1
SW_PEER_IP=10.215.0.2
WEB6=fd00:213:1::2  # web's IPv6 twin (job 12)
SCAN_IP6=fd00:213:1::1
STATES="python3 $HERE/states.py"

ALL_JOBS="1 2 3 4 5 6 7 8 9 10 11 12 13"
jobs_arg=${FSBENCH_JOBS:-$ALL_JOBS}
read -ra JOB_LIST <<<"${jobs_arg//,/ }"
((${#JOB_LIST[@]})) || { echo "compare.sh: FSBENCH_JOBS is empty (jobs: $ALL_JOBS)" >&2; exit 2; }
for j in "${JOB_LIST[@]}"; do
    [[ " $ALL_JOBS " == *" $j "* ]] || { echo "compare.sh: FSBENCH_JOBS: no job '$j' (jobs: $ALL_JOBS)" >&2; exit 2; }
done
JOBS=" ${JOB_LIST[*]} "
# want N: job N is to run.
want() { [[ $JOBS == *" $1 "* ]]; }

WORK=$(mktemp -d /tmp/fsbench.XXXXXX)
chmod 755 "$WORK"
RESULTS=$WORK/results.tsv
: >"$RESULTS"
FS=""

log() { printf '[compare] %s\n' "$*" >&2; }

kill_ns_pids() {
    local ns=$1 pid
    [[ -e /run/netns/$ns ]] || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -9 "$pid" 2>/dev/null || true
    done
}

del_ns() {
    local ns=$1
    [[ -e /run/netns/$ns ]] || return 0
    kill_ns_pids "$ns"
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    log "cleaning up: removing namespaces $SWEEP_NS $LOSS_NS $S8_NS $K8_NS and lab '$PREFIX'"
    del_ns "$SWEEP_NS"
    del_ns "$LOSS_NS"
    del_ns "$S8_NS"
    del_ns "$K8_NS"
    if [[ -n $FS && -x $FS ]]; then
        timeout 60 "$FS" lab down --prefix "$PREFIX" >/dev/null 2>&1
    fi
    # Whatever the lab command could not remove (a half-built lab, no binary).
    for ns in "$GW_NS" "$SCAN_NS" "$WEB_NS" "$PREFIX-rst" "$PREFIX-rstlim" "$FWD_NS" "$REJ_NS" "$PREFIX-far"; do
        del_ns "$ns"
    done
    if [[ ${FSBENCH_KEEP:-0} == 1 ]]; then
        log "raw outputs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools

need_install=()
command -v nmap >/dev/null || need_install+=(nmap)
command -v masscan >/dev/null || need_install+=(masscan)
command -v zmap >/dev/null || need_install+=(zmap)
[[ -x /usr/bin/time ]] || need_install+=(time)
command -v ip >/dev/null || need_install+=(iproute2)
command -v iptables >/dev/null || need_install+=(iptables)
command -v python3 >/dev/null || need_install+=(python3)
if ((${#need_install[@]})); then
    log "installing: ${need_install[*]}"
    if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need_install[@]}" >"$WORK/apt.log" 2>&1; then
        timeout 300 apt-get update >>"$WORK/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "${need_install[@]}" >>"$WORK/apt.log" 2>&1 \
            || { tail -20 "$WORK/apt.log" >&2; echo "compare.sh: apt-get install failed" >&2; exit 1; }
    fi
fi
HAVE_MASSCAN=1; command -v masscan >/dev/null || HAVE_MASSCAN=0
HAVE_ZMAP=1; command -v zmap >/dev/null || HAVE_ZMAP=0

if [[ ${FSBENCH_NO_BUILD:-0} != 1 ]]; then
    command -v cargo >/dev/null || { echo "compare.sh: cargo not found in root's PATH (try: sudo env PATH=\"\$PATH\" bash bench/compare.sh)" >&2; exit 2; }
    log "building flagscan (cargo build --release)"
    (cd "$ROOT" && timeout 900 cargo build --release --quiet) || { echo "compare.sh: cargo build --release failed" >&2; exit 1; }
fi
# A private copy: other builds of target/ cannot swap the binary mid-run.
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/flagscan" "$WORK/flagscan"
FS=$WORK/flagscan

# ---------------------------------------------------------------- machine

git_() { git -c safe.directory="$ROOT" -C "$ROOT" "$@"; }
COMMIT=$(git_ rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY=$(git_ status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
{
    echo "== machine"
    echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc:       $(nproc)"
    echo "kernel:      $(uname -r)"
    echo "cpu:         $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory:      $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
    echo "flagscan:    commit $COMMIT$( ((DIRTY)) && echo " + uncommitted changes in $DIRTY file(s) under src/, Cargo.*")"
    echo "binary:      sha256 $(sha256sum "$FS" | cut -c1-16)"
    echo "nmap:        $(nmap --version | head -1)"
    echo "masscan:     $( ((HAVE_MASSCAN)) && { (masscan --version 2>&1 || true) | grep -m1 -i 'version' || true; } || echo missing)"
    echo "zmap:        $( ((HAVE_ZMAP)) && zmap --version 2>&1 | head -1 || echo missing)"
    echo "rates:       masscan --rate $RATE, zmap -r $RATE; flagscan default pacing; nmap -T4"
    echo "jobs:        ${JOB_LIST[*]}"
} | tee "$WORK/report.txt"

# ---------------------------------------------------------------- lab

mac_of() { ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
rx_packets() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# start_listener NS PORTS: flagscan's own lab listener, in the background.
start_listener() {
    local ns=$1 ports=$2 out="$WORK/listen-$1.out"
    setsid ip netns exec "$ns" "$FS" lab listen --ports "$ports" </dev/null >"$out" 2>&1 &
    disown $!  # killed at cleanup with the namespace's other processes
    for _ in $(seq 50); do
        grep -q '^ready' "$out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "compare.sh: listener in $ns did not start: $(cat "$out")" >&2
    exit 1
}

log "building the lab (flagscan lab up --prefix $PREFIX)"
del_ns "$SWEEP_NS"
del_ns "$LOSS_NS"
timeout 60 "$FS" lab up --prefix "$PREFIX" >"$WORK/lab-up.out" 2>&1 \
    || { cat "$WORK/lab-up.out" >&2; exit 1; }

# The /16: a namespace whose loopback owns 10.214.0.0/16 (every address is a
# live host with port 80 listening), reached from the scanner through its
# own veth pair, so masscan and zmap get a real Ethernet next hop.
ip netns add "$SWEEP_NS"
ip -n "$SWEEP_NS" link set lo up
ip -n "$SCAN_NS" link add sw0 type veth peer name eth0 netns "$SWEEP_NS"
ip -n "$SCAN_NS" addr add "$SW_SCAN_IP/30" dev sw0
ip -n "$SCAN_NS" link set sw0 up
ip -n "$SWEEP_NS" addr add "$SW_PEER_IP/30" dev eth0
ip -n "$SWEEP_NS" link set eth0 up
ip -n "$SWEEP_NS" route add local "$SWEEP_NET" dev lo
ip -n "$SCAN_NS" route add "$SWEEP_NET" via "$SW_PEER_IP" dev sw0
# 65,536 half-open handshakes: answer them all with SYN cookies rather than
# a SYN queue that overflows.
ip netns exec "$SWEEP_NS" sysctl -qw net.ipv4.tcp_syncookies=2 net.ipv4.icmp_ratelimit=0
start_listener "$SWEEP_NS" 80

# The lossy host: on the lab's bridge, listening on 22,80,443,3306,8080,
# 135 dropped, 111 rejected with ICMP; 10% of incoming TCP dropped at random
# (the rule is inserted after the loss-free baseline).
ip netns add "$LOSS_NS"
ip -n "$LOSS_NS" link set lo up
ip -n "$GW_NS" link add v-loss type veth peer name eth0 netns "$LOSS_NS"
ip -n "$GW_NS" link set v-loss master br0
ip -n "$GW_NS" link set v-loss up
ip -n "$LOSS_NS" addr add "$LOSS_IP/24" dev eth0
ip -n "$LOSS_NS" link set eth0 up
ip netns exec "$LOSS_NS" sysctl -qw net.ipv4.icmp_ratelimit=0
ip netns exec "$LOSS_NS" iptables -A INPUT -p tcp --dport 135 -j DROP
ip netns exec "$LOSS_NS" iptables -A INPUT -p tcp --dport 111 -j REJECT --reject-with icmp-port-unreachable
start_listener "$LOSS_NS" 22,80,443,3306,8080

# Network rule, checked: the scanner namespace has no default route, in
# either family.
if [[ -n $(ip -n "$SCAN_NS" route show default) || -n $(ip -n "$SCAN_NS" -6 route show default) ]]; then
    echo "compare.sh: $SCAN_NS has a default route; refusing to scan" >&2
    exit 1
fi

SCAN_MAC=$(mac_of "$SCAN_NS" eth0)
WEB_MAC=$(mac_of "$WEB_NS" eth0)
SW_MAC=$(mac_of "$SCAN_NS" sw0)
SWEEP_MAC=$(mac_of "$SWEEP_NS" eth0)

# ---------------------------------------------------------------- runners

# timed NAME LIMIT CMD...: runs CMD under timeout and /usr/bin/time; sets
# T_WALL T_CPU T_RSS (KB) T_RC. Output in $WORK/NAME.out.
timed() {
    local name=$1 limit=$2
    shift 2
    T_RC=0
    /usr/bin/time -o "$WORK/$name.time" -f '%e %U %S %M' \
        timeout --kill-after=5 "$limit" "$@" >"$WORK/$name.out" 2>&1 || T_RC=$?
    local u s
    read -r T_WALL u s T_RSS < <(tail -1 "$WORK/$name.time")
    T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    if ((T_RC == 124 || T_RC == 137)); then
        log "  $name: timed out after ${limit}s"
    elif ((T_RC != 0)); then
        log "  $name: exit status $T_RC ($(tail -c 300 "$WORK/$name.out" | tr '\n\r' '  '))"
    fi
    sleep 1
}

row() { # job tool wall cpu probes pps rss diff compared found note
    local IFS=$'\t'
    echo "$*" >>"$RESULTS"
}

# diffs REF TOOL: "<differing> <compared> <open in tool>", or "- - -" when a
# file is missing (a tool that timed out before writing it).
diffs() { $STATES diff "$1" "$2" 2>>"$WORK/states.err" || echo "- - -"; }
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }

div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.0f", a / b; else print "-" }'; }

status_note() {
    if ((T_RC == 124 || T_RC == 137)); then echo "TIMED OUT after $1 s: partial or no results"
    elif ((T_RC != 0)); then echo "exit status $T_RC"
    fi
}

# run_flagscan JOB NAME LIMIT FLAGSCAN-ARGS...: one timed flagscan run from
# the scanner namespace. Its states are compared per technique with the
# references in FS_DIFF_SPECS ("syn=nmap:FILE fin=nmap:FILE ..."); the row is
# named FS_TOOL (default "flagscan").
run_flagscan() {
    local job=$1 name=$2 limit=$3
    shift 3
    log "$job: flagscan $*"
    timed "$name" "$limit" "$FS" --netns "$SCAN_NS" "$@" -oJ "$WORK/$name.json"
    local probes elapsed pps dif=0 comp=0 found=0 d c f spec
    read -r probes elapsed pps < <($STATES fsstats "$WORK/$name.json" 2>/dev/null || echo "- - -")
    for spec in $FS_DIFF_SPECS; do
        read -r d c f < <(diffs "${spec#*=}" "flagscan:$WORK/$name.json:${spec%%=*}")
        if isnum "$d" && isnum "$dif"; then
            dif=$((dif + d)); comp=$((comp + c)); found=$((found + f))
        else
            dif=- comp=- found=-
        fi
    done
    local note
    FS_LAST_ELAPSED=$elapsed
    note=$(status_note "$limit")
    [[ $elapsed == - ]] || note="scan took $(printf '%.2f' "$elapsed") s by its own clock (wall adds start-up and output) $note"
    row "$job" "${FS_TOOL:-flagscan}" "$T_WALL" "$T_CPU" "$probes" "$pps" "$T_RSS" "$dif" "$comp" "$found" "$note"
}

# run_nmap NAME LIMIT ARGS...: sets N_WALL N_CPU N_RSS N_PROBES N_NOTE.
run_nmap() {
    local name=$1 limit=$2
    shift 2
    log "nmap $*"
    timed "$name" "$limit" ip netns exec "$SCAN_NS" nmap -v "$@" -oX "$WORK/$name.xml"
    N_WALL=$T_WALL N_CPU=$T_CPU N_RSS=$T_RSS
    N_PROBES=$(sed -n 's/.*Raw packets sent: \([0-9]*\).*/\1/p' "$WORK/$name.out" | tail -1)
    N_PROBES=${N_PROBES:--}
    N_NOTE=$(status_note "$limit")
}

# ---------------------------------------------------------------- job 1
# Every job but 6 gives nmap -Pn, and flagscan too: the same work (masscan
# and zmap have no host discovery). Job 6 is about host discovery.
if want 1; then
    J1="1. one host ($WEB), ports 1-65535, SYN"
    log "job $J1"
    run_nmap n1 120 -sS -T4 -p- -n -Pn "$WEB"
    row "$J1" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n1.xml")" "$N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n1.xml"
    run_flagscan "$J1" f1 120 -Pn -sS -p- "$WEB"
    if ((HAVE_MASSCAN)); then
        log "masscan -p1-65535 $WEB --rate $RATE"
        rx0=$(rx_packets "$SCAN_NS" eth0)
        timed m1 120 ip netns exec "$SCAN_NS" masscan -p1-65535 "$WEB" --rate "$RATE" \
            -e eth0 --adapter-ip "$SCAN_IP" --adapter-mac "$SCAN_MAC" --router-mac "$WEB_MAC" \
            --wait 1 -oL "$WORK/m1.txt"
        rx1=$(rx_packets "$SCAN_NS" eth0)
        read -r d c f < <(diffs "nmap:$WORK/n1.xml" "masscan:$WORK/m1.txt")
        row "$J1" masscan "$T_WALL" "$T_CPU" 65535 "$(div 65535 "$T_WALL")" "$T_RSS" "$d" "$c" "$f" \
            "--wait 1; open/not-open compared (masscan lists open ports only); probes/s = 65535/wall; $((rx1 - rx0)) packets arrived on eth0 during the run $(status_note 120)"
    else
        row "$J1" masscan - - - - - - - - "not installed"
    fi
    row "$J1" zmap - - - - - - - - "n/a: zmap -p takes one port per scan"
fi

# ---------------------------------------------------------------- job 2
if want 2; then
    J2="2. one host ($WEB), ports 1-65535, FIN"
    log "job $J2"
    run_nmap n2 180 -sF -T4 -p- -n -Pn "$WEB"
    row "$J2" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n2.xml")" "$N_NOTE"
    FS_DIFF_SPECS="fin=nmap:$WORK/n2.xml"
    run_flagscan "$J2" f2 180 -Pn -sF -p- "$WEB"
    row "$J2" masscan - - - - - - - - "n/a: SYN only"
    row "$J2" zmap - - - - - - - - "n/a: no FIN probe module"
fi

# ---------------------------------------------------------------- job 3
if want 3; then
    J3="3. one host ($WEB), ports 1-65535, SYN+FIN+NULL+Xmas"
    log "job $J3"
    sum_wall=0 sum_cpu=0 sum_probes=0 max_rss=0 notes=""
    FS_DIFF_SPECS=""
    for t in S F N X; do
        run_nmap "n3$t" 180 "-s$t" -T4 -p- -n -Pn "$WEB"
        sum_wall=$(awk -v a="$sum_wall" -v b="$N_WALL" 'BEGIN { printf "%.2f", a + b }')
        sum_cpu=$(awk -v a="$sum_cpu" -v b="$N_CPU" 'BEGIN { printf "%.2f", a + b }')
        [[ $N_PROBES == - ]] || sum_probes=$((sum_probes + N_PROBES))
        ((N_RSS > max_rss)) && max_rss=$N_RSS
        [[ -z $N_NOTE ]] || notes+="-s$t: $N_NOTE; "
        case $t in S) tech=syn ;; F) tech=fin ;; N) tech=null ;; X) tech=xmas ;; esac
        FS_DIFF_SPECS+="$tech=nmap:$WORK/n3$t.xml "
    done
    row "$J3" "nmap -T4 x4" "$sum_wall" "$sum_cpu" "$sum_probes" "$(div "$sum_probes" "$sum_wall")" "$max_rss" "ref" "" \
        "$($STATES count "nmap:$WORK/n3S.xml")" \
        "four runs (-sS, -sF, -sN, -sX), times and probes summed, RSS the largest $notes"
    run_flagscan "$J3" f3 240 -Pn -sS -sF -sN -sX -p- "$WEB"
    row "$J3" masscan - - - - - - - - "n/a"
    row "$J3" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 4
if want 4; then
    J4="4. /16 of live hosts ($SWEEP_NET, $SWEEP_HOSTS hosts), port 80, SYN"
    log "job $J4"
    run_nmap n4 300 -sS -T4 -p80 -n -Pn "$SWEEP_NET"
    row "$J4" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n4.xml")" "$N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n4.xml"
    run_flagscan "$J4" f4 180 -Pn -sS -p80 "$SWEEP_NET"
    F4_ELAPSED=$FS_LAST_ELAPSED
    if ((HAVE_MASSCAN)); then
        log "masscan -p80 $SWEEP_NET --rate $RATE"
        rx0=$(rx_packets "$SCAN_NS" sw0)
        timed m4 120 ip netns exec "$SCAN_NS" masscan -p80 "$SWEEP_NET" --rate "$RATE" \
            -e sw0 --adapter-ip "$SW_SCAN_IP" --adapter-mac "$SW_MAC" --router-mac "$SWEEP_MAC" \
            --wait 1 -oL "$WORK/m4.txt"
        rx1=$(rx_packets "$SCAN_NS" sw0)
        read -r d c f < <(diffs "nmap:$WORK/n4.xml" "masscan:$WORK/m4.txt")
        row "$J4" masscan "$T_WALL" "$T_CPU" "$SWEEP_HOSTS" "$(div "$SWEEP_HOSTS" "$T_WALL")" "$T_RSS" "$d" "$c" "$f" \
            "--wait 1; probes/s = $SWEEP_HOSTS/wall; $((rx1 - rx0)) packets arrived on sw0 during the run (the SYN-ACKs it did not list reached the interface) $(status_note 120)"
    else
        row "$J4" masscan - - - - - - - - "not installed"
    fi
    if ((HAVE_ZMAP)); then
        log "zmap -p 80 $SWEEP_NET -r $RATE"
        : >"$WORK/zmap-blocklist.conf" # zmap's default blocklist holds 10/8; the target list below bounds the scan
        timed z4 120 ip netns exec "$SCAN_NS" zmap -p 80 -i sw0 -G "$SWEEP_MAC" -S "$SW_SCAN_IP" \
            -r "$RATE" -n "$SWEEP_HOSTS" -c 1 -b "$WORK/zmap-blocklist.conf" --disable-syslog \
            -f saddr -o "$WORK/z4.csv" -m "$WORK/z4.meta" "$SWEEP_NET"
        zsent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_sent"])' "$WORK/z4.meta" 2>/dev/null || echo -)
        # zmap's own average send rate from its last status line ("done (79.6 Kp/s avg)").
        zpps=$(tr '\r' '\n' <"$WORK/z4.out" | sed -n 's/.*send: [0-9]* done (\([0-9.]*\) \([KMG]*\)p\/s avg).*/\1 \2/p' | tail -1 |
            awk '{ m = ($2 == "K") ? 1e3 : ($2 == "M") ? 1e6 : ($2 == "G") ? 1e9 : 1; if (NF) printf "%.0f", $1 * m }')
        [[ -n $zpps ]] || zpps=$(div "$zsent" "$T_WALL")
        read -r d c f < <(diffs "nmap:$WORK/n4.xml" "zmap:$WORK/z4.csv:80")
        row "$J4" zmap "$T_WALL" "$T_CPU" "$zsent" "$zpps" "$T_RSS" "$d" "$c" "$f" \
            "-c 1 (cooldown 1 s instead of 8); probes/s is zmap's own send average $(status_note 120)"
    else
        row "$J4" zmap - - - - - - - - "not installed"
    fi
fi

# ---------------------------------------------------------------- job 6
# Real networks (issue 12). Before job 5: its loss host sits on the LAN.
if want 6; then
    J6="6. mostly empty /24s, on the link ($LAN_NET) and routed ($FAR_NET), ports 1-100, SYN"
    log "job $J6"
    run_nmap n6 300 -sS -T4 -p1-100 -n "$LAN_NET" "$FAR_NET"
    row "$J6" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n6.xml")" "with nmap's host discovery $N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n6.xml"
    run_flagscan "$J6" f6 300 -sS -p1-100 "$LAN_NET" "$FAR_NET"
    read -r H6 _ _ < <($STATES hostsdiff "nmap:$WORK/n6.xml" "flagscan:$WORK/f6.json")
    row "$J6" masscan - - - - - - - - "n/a: no host discovery"
    row "$J6" zmap - - - - - - - - "n/a: one port per scan"
fi

# ---------------------------------------------------------------- job 7
if want 7; then
    J7="7. a host sending at most 200 RSTs a second ($RSTLIM_IP), ports 1-3000, SYN"
    log "job $J7"
    run_nmap n7 300 -sS -T4 -p1-3000 -n -Pn "$RSTLIM_IP"
    row "$J7" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n7.xml")" "$N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n7.xml"
    run_flagscan "$J7" f7 300 -Pn -sS -p1-3000 "$RSTLIM_IP"
    row "$J7" masscan - - - - - - - - "not run"
    row "$J7" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 8
if want 8; then
    J8="8. two REJECTed ports, Linux's ICMP limit ($REJ_IP), ports 1-1000, four techniques, ten runs"
    log "job $J8"
    sum_wall=0 refs=()
    for t in S F N X; do
        case $t in S) tech=syn ;; F) tech=fin ;; N) tech=null ;; X) tech=xmas ;; esac
        run_nmap "n8$t" 120 "-s$t" -T4 -p1-1000 -n -Pn "$REJ_IP"
        sum_wall=$(awk -v a="$sum_wall" -v b="$N_WALL" 'BEGIN { printf "%.2f", a + b }')
        refs+=("nmap:$WORK/n8$t.xml:$tech")
        sleep 7 # the host's ICMP bucket refills between nmap's runs
    done
    row "$J8" "nmap -T4 x4" "$sum_wall" - - - - "ref" "" - "four runs, one per technique, 7 s apart"
    EXACT8=0 WALL8=""
    for run in 1 2 3 4 5 6 7 8 9 10; do
        FS_DIFF_SPECS="" FS_TOOL="flagscan run $run" run_flagscan "$J8" "f8r$run" 120 -Pn -sS -sF -sN -sX -p1-1000 "$REJ_IP"
        read -r d8 _ < <($STATES reasondiff "${refs[@]}" "flagscan:$WORK/f8r$run.json")
        [[ $d8 == 0 ]] && EXACT8=$((EXACT8 + 1))
        WALL8+="$T_WALL "
    done
    row "$J8" masscan - - - - - - - - "n/a"
    row "$J8" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 9
if want 9; then
    J9="9. firewalld-like host ($FWD_IP), everything REJECTed, ports 1-200, FIN"
    log "job $J9: ground truth first (the host's ICMP limit off)"
    ip netns exec "$FWD_NS" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=10000
    FS_DIFF_SPECS="" FS_TOOL="flagscan, limit off (truth)" run_flagscan "$J9" f9truth 120 -Pn -sF -p1-200 "$FWD_IP"
    ip netns exec "$FWD_NS" sysctl -qw net.ipv4.icmp_ratelimit=1000 net.ipv4.icmp_msgs_per_sec=1000 net.ipv4.icmp_msgs_burst=50
    sleep 7 # a full bucket for each run, as a first scan of the host would find it
    run_nmap n9 300 -sF -T4 -p1-200 -n -Pn "$FWD_IP"
    read -r R9N W9N _ _ < <($STATES truth "flagscan:$WORK/f9truth.json:fin" "nmap:$WORK/n9.xml:fin")
    row "$J9" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "$W9N" 200 - "$R9N of 200 states right against the truth $N_NOTE"
    sleep 7
    FS_DIFF_SPECS="" run_flagscan "$J9" f9 300 -Pn -sF -p1-200 "$FWD_IP"
    read -r R9 _ U9 M9 < <($STATES truth "flagscan:$WORK/f9truth.json:fin" "flagscan:$WORK/f9.json:fin")
    row "$J9" masscan - - - - - - - - "n/a"
    row "$J9" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 10
if want 10; then
    P10="1-25,53,111,123,137,161,500,514,1900,5353,9999"
    J10="10. UDP: a Linux host ($REJ_IP) with DNS, NTP and echo, ICMP limit on, 35 ports"
    log "job $J10: ground truth first (the host's ICMP limit off)"
    ip netns exec "$REJ_NS" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=10000
    FS_DIFF_SPECS="" FS_TOOL="flagscan, limit off (truth)" run_flagscan "$J10" f10truth 120 -Pn -sU -p"$P10" "$REJ_IP"
    ip netns exec "$REJ_NS" sysctl -qw net.ipv4.icmp_ratelimit=1000 net.ipv4.icmp_msgs_per_sec=1000 net.ipv4.icmp_msgs_burst=50
    sleep 7 # a full bucket for each run
    run_nmap n10 300 -sU -T4 -p"$P10" -n -Pn "$REJ_IP"
    read -r R10N W10N _ _ < <($STATES truth "flagscan:$WORK/f10truth.json:udp" "nmap:$WORK/n10.xml:udp")
    row "$J10" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "$W10N" 35 - "$R10N of 35 states right against the truth $N_NOTE"
    sleep 7
    FS_DIFF_SPECS="" run_flagscan "$J10" f10 300 -Pn -sU -p"$P10" "$REJ_IP"
    read -r R10 _ U10 M10 < <($STATES truth "flagscan:$WORK/f10truth.json:udp" "flagscan:$WORK/f10.json:udp")
    row "$J10" masscan - - - - - - - - "n/a"
    row "$J10" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 11
if want 11; then
    P11="1-300"
    J11="11. UDP: the same host, 300 ports, 16 source addresses (-S ${SRC_POOL})"
    log "job $J11: ground truth first (the host's ICMP limit off)"
    ip netns exec "$REJ_NS" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=10000
    FS_DIFF_SPECS="" FS_TOOL="flagscan, limit off (truth)" run_flagscan "$J11" f11truth 120 -Pn -sU -p"$P11" "$REJ_IP"
    ip netns exec "$REJ_NS" sysctl -qw net.ipv4.icmp_ratelimit=1000 net.ipv4.icmp_msgs_per_sec=1000 net.ipv4.icmp_msgs_burst=50
    sleep 7
    # nmap takes one source address (-S): at the limiter's pace it needs
    # minutes (bounded at ten).
    run_nmap n11 600 -sU -T4 -p"$P11" -n -Pn "$REJ_IP"
    read -r R11N W11N _ _ < <($STATES truth "flagscan:$WORK/f11truth.json:udp" "nmap:$WORK/n11.xml:udp")
    row "$J11" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "$W11N" 300 - "$R11N of 300 states right against the truth $N_NOTE"
    sleep 7
    FS_DIFF_SPECS="" run_flagscan "$J11" f11 300 -Pn -sU -S "$SRC_POOL" -p"$P11" "$REJ_IP"
    read -r R11 _ U11 M11 < <($STATES truth "flagscan:$WORK/f11truth.json:udp" "flagscan:$WORK/f11.json:udp")
    row "$J11" masscan - - - - - - - - "n/a"
    row "$J11" zmap - - - - - - - - "n/a"
fi

# ---------------------------------------------------------------- job 12
# IPv6 (issue 15): job 1 over web's IPv6 address. web's IPv6 firewall is
# its IPv4 one but for tcp/137-139 (closed over IPv6, filtered over IPv4).
if want 12; then
    J12="12. one host over IPv6 ($WEB6), ports 1-65535, SYN"
    log "job $J12"
    run_nmap n12 120 -6 -sS -T4 -p- -n -Pn "$WEB6"
    row "$J12" "nmap -6 -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n12.xml")" "$N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n12.xml"
    run_flagscan "$J12" f12 120 -Pn -sS -p- "$WEB6"
    if ((HAVE_MASSCAN)); then
        # masscan 1.3.2 takes an IPv6 target only with --range (a bare one is
        # "unknown command-line parameter"), and its next hop's MAC with
        # --router-mac-ipv6.
        log "masscan -p1-65535 --range $WEB6 --rate $RATE"
        rx0=$(rx_packets "$SCAN_NS" eth0)
        timed m12 120 ip netns exec "$SCAN_NS" masscan -p1-65535 --range "$WEB6" --rate "$RATE" \
            -e eth0 --adapter-ip "$SCAN_IP6" --adapter-mac "$SCAN_MAC" --router-mac-ipv6 "$WEB_MAC" \
            --wait 1 -oL "$WORK/m12.txt"
        rx1=$(rx_packets "$SCAN_NS" eth0)
        read -r d c f < <(diffs "nmap:$WORK/n12.xml" "masscan:$WORK/m12.txt")
        row "$J12" masscan "$T_WALL" "$T_CPU" 65535 "$(div 65535 "$T_WALL")" "$T_RSS" "$d" "$c" "$f" \
            "--wait 1; open/not-open compared (masscan lists open ports only); probes/s = 65535/wall; $((rx1 - rx0)) packets arrived on eth0 during the run $(status_note 120)"
    else
        row "$J12" masscan - - - - - - - - "not installed"
    fi
    row "$J12" zmap - - - - - - - - "n/a: zmap does not scan IPv6 (and -p takes one port per scan)"
fi

# ---------------------------------------------------------------- job 13
# Large target sets (issue 11, item 6): a /8 of which nothing answers, one
# port, -Pn. Each tool runs 10 s and is interrupted as with Ctrl-C; the row
# gives how soon its first probe reached the sink, its peak RSS (from
# /usr/bin/time, output writing included) and the packets that arrived.
if want 13; then
    J13="13. a /8 (10.0.0.0/8, nothing answers), port 80, -Pn, 10 s then Ctrl-C"
    log "job $J13"
    del_ns "$S8_NS"
    del_ns "$K8_NS"
    ip netns add "$S8_NS"
    ip netns add "$K8_NS"
    # IPv4 only: an IPv6 router solicitation or MLD report on the new link
    # would count as the first probe.
    ip netns exec "$S8_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$K8_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$S8_NS" link add s8a type veth peer name k8b netns "$K8_NS"
    ip -n "$S8_NS" addr add 192.0.2.1/30 dev s8a
    ip -n "$K8_NS" addr add 192.0.2.2/30 dev k8b
    ip -n "$S8_NS" link set s8a up
    ip -n "$K8_NS" link set k8b up
    ip -n "$S8_NS" link set lo up
    ip netns exec "$K8_NS" sysctl -qw net.ipv4.ip_forward=0
    ip -n "$S8_NS" route add 10.0.0.0/8 via 192.0.2.2
    [[ -z $(ip -n "$S8_NS" route show default) ]] || { echo "compare.sh: $S8_NS has a default route" >&2; exit 1; }
    S8_MAC=$(mac_of "$S8_NS" s8a)
    K8_MAC=$(mac_of "$K8_NS" k8b)
    # big NAME TOOL CMD...: the row of one tool.
    big() {
        local name=$1 tool=$2
        shift 2
        local first packets rc rss
        read -r first packets rc < <(python3 "$HERE/firstprobe.py" "$K8_NS" k8b 10 -- \
            /usr/bin/time -o "$WORK/$name.time" -f '%M' ip netns exec "$S8_NS" "$@")
        # Empty when the tool had to be killed (time reports no figures then).
        rss=$(grep -E '^[0-9]+$' "$WORK/$name.time" | tail -1 | awk '{ printf "%.0f", $1 / 1024 }')
        [[ -n $rss ]] || rss=-
        row "$J13" "$tool" "-" "-" "$packets" "-" "$([[ $rss == - ]] && echo - || echo $((rss * 1024)))" "-" "" "" \
            "first probe after ${first} s; peak RSS ${rss} MB; $packets packets reached the sink in 10 s; exit status $rc"
        eval "B13_${name}=\"$first $rss\""
    }
    big f13 flagscan "$FS" -Pn -sS -p80 --yes 10.0.0.0/8 -oJ "$WORK/f13.json"
    big f13d "flagscan, discovery" "$FS" -sS -p80 --yes 10.0.0.0/8 -oJ "$WORK/f13d.json"
    big n13 "nmap -T4" nmap -sS -T4 -p80 -n -Pn 10.0.0.0/8 -oX "$WORK/n13.xml"
    if ((HAVE_MASSCAN)); then
        big m13 masscan masscan -p80 10.0.0.0/8 --rate "$RATE" -e s8a --adapter-ip 192.0.2.1 \
            --adapter-mac "$S8_MAC" --router-mac "$K8_MAC" --wait 1 -oL "$WORK/m13.txt"
    else
        row "$J13" masscan - - - - - - - - "not installed"
    fi
    if ((HAVE_ZMAP)); then
        : >"$WORK/zmap-blocklist13.conf" # zmap's default blocklist holds 10/8
        big z13 zmap zmap -p 80 -i s8a -G "$K8_MAC" -S 192.0.2.1 -r "$RATE" -c 1 \
            -b "$WORK/zmap-blocklist13.conf" --disable-syslog -f saddr -o "$WORK/z13.csv" 10.0.0.0/8
    else
        row "$J13" zmap - - - - - - - - "not installed"
    fi
    del_ns "$S8_NS"
    del_ns "$K8_NS"
fi

# ---------------------------------------------------------------- job 5
if want 5; then
    J5="5. one host ($LOSS_IP) dropping 10% of incoming TCP, ports 1-10000, SYN"
    log "job $J5: loss-free baselines first"
    FS_DIFF_SPECS=""
    run_nmap n5base 120 -sS -T4 -p1-10000 -n -Pn "$LOSS_IP"
    row "$J5" "nmap -T4, no loss" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "-" "" \
        "$($STATES count "nmap:$WORK/n5base.xml")" "baseline before the loss rule; the row 'flagscan, no loss' is compared with it"
    FS_DIFF_SPECS="syn=nmap:$WORK/n5base.xml"
    FS_TOOL="flagscan, no loss" run_flagscan "$J5" f5base 120 -Pn -sS -p1-10000 "$LOSS_IP"

    ip netns exec "$LOSS_NS" iptables -I INPUT 1 -p tcp -m statistic --mode random --probability 0.1 -j DROP
    log "job $J5: 10% loss rule in place"
    run_nmap n5 300 -sS -T4 -p1-10000 -n -Pn "$LOSS_IP"
    row "$J5" "nmap -T4" "$N_WALL" "$N_CPU" "$N_PROBES" "$(div "$N_PROBES" "$N_WALL")" "$N_RSS" "ref" "" \
        "$($STATES count "nmap:$WORK/n5.xml")" "$N_NOTE"
    FS_DIFF_SPECS="syn=nmap:$WORK/n5.xml"
    run_flagscan "$J5" f5 180 -Pn -sS -p1-10000 "$LOSS_IP"
    # Diagnostic, not a target row: as many retries as nmap -T4 allows (6).
    FS_TOOL="flagscan --max-retries 6" run_flagscan "$J5" f5r6 180 -Pn -sS --max-retries 6 -p1-10000 "$LOSS_IP"
    row "$J5" masscan - - - - - - - - "not run (no retransmission by default)"
    row "$J5" zmap - - - - - - - - "n/a: one port per scan"
    read -r L_FS _ _ < <(diffs "flagscan:$WORK/f5base.json:syn" "flagscan:$WORK/f5.json:syn")
    read -r L_NM _ _ < <(diffs "nmap:$WORK/n5base.xml" "nmap:$WORK/n5.xml")
    read -r L_FSN _ _ < <(diffs "nmap:$WORK/n5base.xml" "flagscan:$WORK/f5.json:syn")
    read -r L_R6 _ _ < <(diffs "flagscan:$WORK/f5base.json:syn" "flagscan:$WORK/f5r6.json:syn")
    dropped=$(ip netns exec "$LOSS_NS" iptables -L INPUT 1 -v -x -n | awk '{print $1}')
fi

# ---------------------------------------------------------------- report

{
    echo
    echo "Columns: wall and cpu (user+sys) from /usr/bin/time; probes from the tool's own count"
    echo "(flagscan stats record, nmap 'Raw packets sent', zmap metadata; masscan: targets x ports);"
    echo "probes/s is flagscan's rate_pps (probes / its own elapsed time), zmap's send average, else probes/wall;"
    echo "max RSS from /usr/bin/time %M; 'differ from nmap' counts (host, port) states that differ from"
    echo "the nmap run of the same job (masscan, zmap: open vs not open); 'wall vs flagscan' = wall / flagscan's wall."
    $STATES table "$RESULTS"
    echo
    if want 5; then
        echo "Job 5 under loss: flagscan vs its own loss-free scan: $L_FS states differ;"
        echo "  flagscan under loss vs nmap without loss: $L_FSN differ; nmap under loss vs nmap without loss: $L_NM differ;"
        echo "  flagscan --max-retries 6 under loss vs flagscan's loss-free scan: $L_R6 differ (diagnostic);"
        echo "  the loss rule dropped $dropped incoming TCP packets in total (nmap and flagscan runs under loss)."
    fi
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$WORK/report.txt"

# The issue's targets, read from this run.
get() { # job-prefix tool column(1-based in results.tsv)
    awk -F'\t' -v j="$1" -v t="$2" -v c="$3" 'index($1, j) == 1 && $2 == t { print $c; exit }' "$RESULTS"
}
verdict() { if [[ $1 == 1 ]]; then echo MET; else echo MISSED; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print 0 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? 1 : 0 }'; }
{
    if want 1 || want 3 || want 4 || want 5; then
        echo
        echo "== targets (issue 4), this run"
    fi
    if want 1; then
        r1=$(ratio "$(get 1. 'nmap -T4' 3)" "$(get 1. flagscan 3)")
        d1=$(get 1. flagscan 8)
        ok=0; isnum "$d1" && ((d1 == 0)) && ok=$(ge "$r1" 8)
        echo "full range SYN, >= 8x nmap -T4, states exact: ${r1}x, $d1 differ -> $(verdict "$ok")"
    fi
    if want 3; then
        r3=$(ratio "$(get 3. 'nmap -T4 x4' 3)" "$(get 3. flagscan 3)")
        d3=$(get 3. flagscan 8)
        ok=0; isnum "$d3" && ((d3 == 0)) && ok=$(ge "$r3" 10)
        echo "four techniques, >= 10x four nmap runs, states exact: ${r3}x, $d3 differ -> $(verdict "$ok")"
    fi
    if want 4; then
        f4=$(get 4. flagscan 10)
        fw=$(get 4. flagscan 3)
        zw=$(get 4. zmap 3)
        if [[ -n $zw && $zw != - ]]; then
            ok=0; isnum "$f4" && ((f4 == SWEEP_HOSTS)) && ok=$(ge "$zw" "$fw")
            echo "/16 port 80, 100% found, as fast as zmap: $f4/$SWEEP_HOSTS found, wall ${fw}s vs zmap ${zw}s ($(ratio "$zw" "$fw")x; flagscan's own clock $(printf '%.2f' "$F4_ELAPSED")s) -> $(verdict "$ok")"
        else
            echo "/16 port 80, 100% found, as fast as zmap: $f4/$SWEEP_HOSTS found; zmap did not run"
        fi
    fi
    if want 5; then
        r5=$(ratio "$(get 5. 'nmap -T4' 3)" "$(get 5. flagscan 3)")
        ok=0; isnum "$L_FS" && ((L_FS == 0)) && ok=$(ge "$r5" 3)
        echo "10% loss, states = loss-free scan, >= 3x nmap -T4: $L_FS differ, ${r5}x -> $(verdict "$ok")"
    fi
    if want 6 || want 7 || want 8 || want 9; then
        echo
        echo "== targets (issue 12), this run"
    fi
    if want 6; then
        w6n=$(get 6. 'nmap -T4' 3); w6=$(get 6. flagscan 3); d6=$(get 6. flagscan 8)
        ok=0; isnum "$d6" && ((d6 == 0)) && [[ $H6 == 0 ]] && ok=$(ge "$w6n" "$w6")
        echo "mostly empty /24s: same hosts up ($H6 differ), states exact ($d6 differ), faster than nmap (${w6}s vs ${w6n}s, $(ratio "$w6n" "$w6")x) -> $(verdict "$ok")"
    fi
    if want 7; then
        w7n=$(get 7. 'nmap -T4' 3); w7=$(get 7. flagscan 3); d7=$(get 7. flagscan 8)
        ok=0; isnum "$d7" && ((d7 == 0)) && ok=$(ge "$w7n" "$w7")
        echo "RST-limited host: exact ($d7 differ), no slower than nmap (${w7}s vs ${w7n}s) -> $(verdict "$ok")"
    fi
    if want 8; then
        ok=0; ((EXACT8 == 10)) && ok=1
        echo "two REJECTed ports, four techniques: $EXACT8 of 10 runs equal nmap's states and reasons (walls: $WALL8; nmap x4 $(get 8. 'nmap -T4 x4' 3)s) -> $(verdict "$ok")"
    fi
    if want 9; then
        w9n=$(get 9. 'nmap -T4' 3); w9=$(get 9. flagscan 3)
        ok=0; ((R9 > R9N)) && ((U9 == 0)) && ok=$(ge "$w9n" "$w9")
        echo "firewalld-like host, FIN: $R9 right (nmap $R9N), $U9 wrong and unmarked, $M9 marked, ${w9}s vs nmap ${w9n}s -> $(verdict "$ok")"
    fi
    if want 10 || want 11 || want 4; then
        echo
        echo "== targets (issue 13), this run"
    fi
    if want 10; then
        w10n=$(get 10. 'nmap -T4' 3); w10=$(get 10. flagscan 3)
        ok=0; ((R10 == 35)) && ok=$(ge 35 "$w10")
        echo "UDP, 35 ports, one source address: $R10 of 35 right ($U10 wrong and unmarked, $M10 marked) in ${w10}s (target: all, in at most 35 s); nmap $R10N right in ${w10n}s -> $(verdict "$ok")"
    fi
    if want 11; then
        w11n=$(get 11. 'nmap -T4' 3); w11=$(get 11. flagscan 3)
        ok=0; ((R11 == 300)) && ok=$(ge 30 "$w11")
        echo "UDP, 300 ports, 16 source addresses: $R11 of 300 right ($U11 wrong and unmarked, $M11 marked) in ${w11}s (target: all, in under 30 s); nmap (one source) $R11N right in ${w11n}s -> $(verdict "$ok")"
    fi
    if want 4; then
        echo "CPU s per million probes: see the 'cpu s/Mprobe' column (job 4: flagscan $(awk -v c="$(get 4. flagscan 4)" -v p="$(get 4. flagscan 5)" 'BEGIN { if (p > 0) printf "%.2f", c / (p / 1e6); else print "n/a" }'), masscan $(awk -v c="$(get 4. masscan 4)" -v p="$(get 4. masscan 5)" 'BEGIN { if (p > 0) printf "%.2f", c / (p / 1e6); else print "n/a" }'), zmap $(awk -v c="$(get 4. zmap 4)" -v p="$(get 4. zmap 5)" 'BEGIN { if (p > 0) printf "%.2f", c / (p / 1e6); else print "n/a" }'))"
    fi
    if want 12; then
        # No numeric target in the issue: the ratio and whether the states
        # are exact, and what the peers did.
        echo
        echo "== IPv6 (issue 15), this run"
        w12n=$(get 12. 'nmap -6 -T4' 3); w12=$(get 12. flagscan 3); d12=$(get 12. flagscan 8); c12=$(get 12. flagscan 9)
        x12="NOT EXACT"; isnum "$d12" && ((d12 == 0)) && x12=exact
        echo "IPv6 full range SYN ($WEB6), flagscan vs nmap -6 -T4 (no numeric target): ${w12}s vs ${w12n}s, $(ratio "$w12n" "$w12")x; states $x12 ($d12 of $c12 differ)"
        w12m=$(get 12. masscan 3); d12m=$(get 12. masscan 8)
        if [[ -n $w12m && $w12m != - ]]; then
            echo "  masscan over IPv6: ${w12m}s ($(ratio "$w12m" "$w12")x flagscan's wall), $(get 12. masscan 10) open found, $d12m differ from nmap (open vs not open); zmap: n/a (no IPv6)"
        else
            echo "  masscan over IPv6: did not run; zmap: n/a (no IPv6)"
        fi
    fi
    if want 13; then
        echo
        echo "== large target sets (issue 11), this run"
        read -r b13f b13m <<<"$B13_f13"
        ok=0; [[ $b13f != - ]] && ok=$(awk -v f="$b13f" -v m="$b13m" 'BEGIN { print (f < 1 && m < 100) ? 1 : 0 }')
        echo "a /8, -Pn: first probe within 1 s and under 100 MB: ${b13f} s, ${b13m} MB -> $(verdict "$ok")"
        read -r b13f b13m <<<"$B13_f13d"
        echo "  with host discovery (no target): first probe ${b13f} s, ${b13m} MB"
    fi
} | tee -a "$WORK/report.txt"
