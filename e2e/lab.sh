#!/usr/bin/env bash
# The seed's three sites (../shared/seeds/) in network namespaces, each router a dmvpn-agent:
#
#   LAN host ns            router ns                      underlay ns
#   dmvpn-lab-hub-lan  --  dmvpn-lab-hub    (198.18.0.1) --+
#   dmvpn-lab-spoke1-lan - dmvpn-lab-spoke1 (198.18.0.2) --+-- bridge "inet" (198.18.0.0/15)
#   dmvpn-lab-spoke2-lan - dmvpn-lab-spoke2 (198.18.0.3) --+
#
# LANs 192.168.1.0/24 (hub), .2.0/24 (spoke1), .3.0/24 (spoke2), host .10 behind router .1;
# tunnel 10.1.1.0/24 as in e2e/lab/*.yaml.
#
#   e2e/lab.sh up      build it, start the agents, ping LAN to LAN, show the routers' state
#                      before and after the spoke-to-spoke shortcut
#   e2e/lab.sh status  namespaces, agents, routes, recent log lines
#   e2e/lab.sh down    stop the agents (by the PIDs kept in the state dir), delete it all
#
# Needs root. Uses the release build of dmvpn-agent (built if missing). The state (agent
# configs, PIDs, logs, key logs for decrypting captures) lives in $DMVPN_LAB_STATE (default
# /run/dmvpn-lab).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
state=${DMVPN_LAB_STATE:-/run/dmvpn-lab}
agent=${DMVPN_AGENT:-$repo/target/release/dmvpn-agent}
dmvpnctl=${DMVPNCTL:-$(dirname "$agent")/dmvpnctl}
sites=(hub spoke1 spoke2)
prefix=dmvpn-lab

nbma() { case $1 in hub) echo 198.18.0.1 ;; spoke1) echo 198.18.0.2 ;; spoke2) echo 198.18.0.3 ;; esac; }
lan() { case $1 in hub) echo 1 ;; spoke1) echo 2 ;; spoke2) echo 3 ;; esac; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e/lab.sh needs root (network namespaces, TUN devices, routes): run it with sudo" >&2
        exit 1
    fi
}

# The lab's config of a site: e2e/lab/<site>.yaml as it is (IKEv2 with the pre-shared key of
# e2e/lab/dmvpn.psk, copied beside it, and ESP-in-UDP), its admin socket in the state dir.
write_config() {
    local site=$1
    install -m 0600 "$here/lab/dmvpn.psk" "$state/dmvpn.psk"
    sed "s|^  socket:.*|  socket: $state/$site.sock|" "$here/lab/$site.yaml" >"$state/$site.yaml"
}

build() {
    if [ ! -x "$agent" ] || [ ! -x "$dmvpnctl" ]; then
        echo "== building the release dmvpn-agent and dmvpnctl"
        (cd "$repo" && cargo build -q --release -p dmvpn-agent --bins)
    fi
}

start_agent() {
    local site=$1
    : >"$state/$site.log"
    ip netns exec "$prefix-$site" "$agent" run --config "$state/$site.yaml" \
        --key-log "$state/$site.keys.json" >>"$state/$site.log" 2>&1 &
    echo $! >"$state/$site.pid"
}

# Waits up to $2 seconds for pattern $3 in the log of $1.
wait_log() {
    local site=$1 seconds=$2 pattern=$3
    for _ in $(seq $((seconds * 10))); do
        grep -q -- "$pattern" "$state/$site.log" && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$pattern' in $state/$site.log" >&2
    return 1
}

show() {
    local site
    for site in "${sites[@]}"; do
        echo "--- $site: show dmvpn, show crypto ikev2 sa, routes into the tunnel (proto 212)"
        "$dmvpnctl" --socket "$state/$site.sock" show dmvpn | sed 's/^/    /' || true
        "$dmvpnctl" --socket "$state/$site.sock" show crypto ikev2 sa | sed 's/^/    /' || true
        inns "$prefix-$site" ip route show proto 212 | sed 's/^/    /'
    done
}

lan_ping() {
    local from=$1 to=$2
    echo "== ping 192.168.$(lan "$from").10 ($from LAN) -> 192.168.$(lan "$to").10 ($to LAN)"
    inns "$prefix-$from-lan" ping -c 3 -i 0.2 -W 2 "192.168.$(lan "$to").10" | tail -n 2
}

up() {
    need_root
    if [ -d "$state" ]; then
        down
    fi
    build
    mkdir -p "$state"
    echo "== underlay bridge 198.18.0.0/15 in $prefix-inet"
    ip netns add "$prefix-inet"
    inns "$prefix-inet" ip link set lo up
    inns "$prefix-inet" ip link add inet type bridge
    inns "$prefix-inet" ip link set inet up
    local site n
    for site in "${sites[@]}"; do
        n=$(lan "$site")
        ip netns add "$prefix-$site"
        ip netns add "$prefix-$site-lan"
        inns "$prefix-$site" ip link set lo up
        inns "$prefix-$site-lan" ip link set lo up
        # Underlay: wan0 in the router, its peer on the bridge.
        ip -n "$prefix-$site" link add wan0 type veth peer name "$site" netns "$prefix-inet"
        inns "$prefix-inet" ip link set "$site" master inet up
        inns "$prefix-$site" ip addr add "$(nbma "$site")/15" dev wan0
        inns "$prefix-$site" ip link set wan0 up
        # LAN: lan0 in the router (192.168.n.1), eth0 in the host (192.168.n.10).
        ip -n "$prefix-$site" link add lan0 type veth peer name eth0 netns "$prefix-$site-lan"
        inns "$prefix-$site" ip addr add "192.168.$n.1/24" dev lan0
        inns "$prefix-$site" ip link set lan0 up
        inns "$prefix-$site-lan" ip addr add "192.168.$n.10/24" dev eth0
        inns "$prefix-$site-lan" ip link set eth0 up
        inns "$prefix-$site-lan" ip route add default via "192.168.$n.1"
        inns "$prefix-$site" sysctl -q -w net.ipv4.ip_forward=1
        write_config "$site"
        echo "== $site: router $prefix-$site ($(nbma "$site")), LAN host $prefix-$site-lan (192.168.$n.10)"
    done
    for site in "${sites[@]}"; do
        start_agent "$site"
    done
    wait_log spoke1 10 "registered with NHS"
    wait_log spoke2 10 "registered with NHS"
    echo "== both spokes registered with the hub"
    lan_ping hub spoke1
    lan_ping spoke1 hub
    echo "== before the shortcut"
    show
    lan_ping spoke1 spoke2
    wait_log spoke1 5 "kind=Shortcut"
    lan_ping spoke1 spoke2
    echo "== after the shortcut: spoke1 reaches 192.168.3.0/24 directly"
    show
    echo "== up; logs in $state/*.log; 'e2e/lab.sh down' tears it down"
}

status() {
    need_root
    if [ ! -d "$state" ]; then
        echo "the lab is down"
        return 0
    fi
    local site pid
    for site in "${sites[@]}"; do
        pid=$(cat "$state/$site.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "$site: dmvpn-agent running, PID $pid"
        else
            echo "$site: dmvpn-agent not running"
        fi
    done
    show
}

down() {
    need_root
    local site pid
    for site in "${sites[@]}"; do
        pid=$(cat "$state/$site.pid" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for site in "${sites[@]}"; do
        ip netns del "$prefix-$site-lan" 2>/dev/null || true
        ip netns del "$prefix-$site" 2>/dev/null || true
    done
    ip netns del "$prefix-inet" 2>/dev/null || true
    rm -rf "$state"
    echo "== down"
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: e2e/lab.sh up|down|status" >&2
    exit 2
    ;;
esac
