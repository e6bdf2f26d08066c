#!/usr/bin/env bash
# Throughput and latency of kube-dmvpn against other userspace tunnels (issue 5, "Performance").
#
# One run, one topology: two router namespaces joined by a veth (the underlay, MTU 1500):
#
#   dmvpn-bench-a (198.18.0.1/15, wan0) ---- veth ---- dmvpn-bench-b (198.18.0.2/15, wan0)
#
# Each path below is built in turn between those two namespaces, measured, and torn down:
#
#   path           a           b           what carries it
#   bare underlay  198.18.0.1  198.18.0.2  the veth itself
#   kube-dmvpn     10.1.1.1    10.1.1.2    dmvpn-agent hub (a) + spoke (b): IKEv2 PSK,
#                                          ESP AES-256-GCM in UDP 4500, GRE inside (transport)
#   boringtun      10.2.0.1    10.2.0.2    boringtun-cli (userspace WireGuard, Rust)
#   wireguard-go   10.3.0.1    10.3.0.2    wireguard-go (Debian), configured with wg
#   strongswan     10.4.0.1    10.4.0.2    charon + kernel-libipsec: ESP AES-256-GCM in UDP
#                                          4500, tunnel mode (libipsec has no transport mode)
#
# For each path: iperf3 TCP with 1 and with 4 streams (b sends to a), and ping RTT; every
# measurement is repeated (3 times, 1 with --quick) and the median reported, with the load
# average (/proc/loadavg, 1 minute) read just before each run, and the CPU time of the
# tunnel's processes on both ends per GB iperf3 moved. Then the shortcut time, on the
# seed's three sites (hub, spoke1, spoke2 on an underlay bridge, a LAN host behind each): a
# fresh lab each repetition, `ping -i 0.002` from spoke1's LAN to spoke2's, and a capture on
# spoke1's underlay port; the time from the first echo request leaving spoke1 for the hub to
# the first one travelling spoke1 <-> spoke2 directly.
#
#   e2e/bench.sh [--quick] [--only PATHS] [--no-shortcut]   measure, print tables and ratios
#   e2e/bench.sh down                                       remove leftovers of a broken run
#
# --only takes a comma list of: bare,dmvpn,boringtun,wireguard-go,strongswan.
#
# Needs root, iperf3, tcpdump, tshark, wireguard-go, wg (wireguard-tools), charon + swanctl
# (strongswan-charon strongswan-swanctl libcharon-extra-plugins) and boringtun-cli, installed
# on first use with `cargo install boringtun-cli` into $DMVPN_BENCH_CACHE (default
# /var/cache/dmvpn-bench), outside the repository. Uses the release dmvpn-agent (built if
# missing). State, logs and the results (results.md) go to $DMVPN_BENCH_STATE (default
# /run/dmvpn-bench). Every namespace is named dmvpn-bench-*; only processes this script started
# are stopped, by the PIDs it recorded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
state=${DMVPN_BENCH_STATE:-/run/dmvpn-bench}
cache=${DMVPN_BENCH_CACHE:-/var/cache/dmvpn-bench}
agent=${DMVPN_AGENT:-$repo/target/release/dmvpn-agent}
boringtun=${BORINGTUN:-$cache/boringtun/bin/boringtun-cli}
charon_dir=${TMPDIR:-/tmp}/dmvpn-bench-charon
prefix=dmvpn-bench
ns_a=$prefix-a
ns_b=$prefix-b
runs=3
seconds=10
pings=500
only=bare,dmvpn,boringtun,wireguard-go,strongswan
shortcut=yes

inns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

log() { echo "== $*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e/bench.sh needs root (network namespaces, TUN devices): run it with sudo" >&2
        exit 1
    fi
}

need_tools() {
    local missing=() tool
    for tool in iperf3 tcpdump tshark jq wg wireguard-go swanctl unshare; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ -x /usr/lib/ipsec/charon ] || missing+=(/usr/lib/ipsec/charon)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "missing: ${missing[*]}; on Debian: apt-get install iperf3 tcpdump tshark jq" \
            "wireguard-go wireguard-tools strongswan-charon strongswan-swanctl" \
            "libcharon-extra-plugins" >&2
        exit 1
    fi
}

# Builds what the selected paths need and is missing.
build() {
    if [ ! -x "$agent" ] && { [[ ,$only, == *,dmvpn,* ]] || [ $shortcut = yes ]; }; then
        log "building the release dmvpn-agent"
        (cd "$repo" && cargo build -q --release -p dmvpn-agent --bin dmvpn-agent)
    fi
    if [ ! -x "$boringtun" ] && [[ ,$only, == *,boringtun,* ]]; then
        log "installing boringtun-cli into $cache/boringtun"
        cargo install -q --locked boringtun-cli --root "$cache/boringtun" \
            --target-dir "$cache/boringtun-target"
    fi
}

# Starts "$@" in the background, records its PID under label $1 in $state/pids.
spawn() {
    local label=$1
    shift
    "$@" >>"$state/$label.log" 2>&1 &
    echo "$! $label" >>"$state/pids"
}

# Stops the processes recorded with label $1 (all recorded ones without an argument), by PID:
# SIGTERM, up to 5 s, then SIGKILL.
stop() {
    local want=${1:-} pid label rest=()
    [ -f "$state/pids" ] || return 0
    while read -r pid label; do
        if [ -n "$want" ] && [ "$label" != "$want" ]; then
            rest+=("$pid $label")
            continue
        fi
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || continue 2
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$state/pids"
    if [ ${#rest[@]} -gt 0 ]; then
        printf '%s\n' "${rest[@]}" >"$state/pids"
    else
        : >"$state/pids"
    fi
}

# Stops every recorded process and deletes every dmvpn-bench-* namespace.
down() {
    local ns
    stop
    for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
        ip netns del "$ns"
    done
    rm -rf "$charon_dir-a" "$charon_dir-b"
}

# The two router namespaces and the veth between them.
pair_up() {
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    inns "$ns_a" ip link set lo up
    inns "$ns_b" ip link set lo up
    ip -n "$ns_a" link add wan0 type veth peer name wan0 netns "$ns_b"
    inns "$ns_a" ip addr add 198.18.0.1/15 dev wan0
    inns "$ns_b" ip addr add 198.18.0.2/15 dev wan0
    inns "$ns_a" ip link set wan0 up
    inns "$ns_b" ip link set wan0 up
    spawn iperf3 ip netns exec "$ns_a" iperf3 -s
    for _ in $(seq 50); do
        inns "$ns_a" ss -Hltn 'sport = 5201' | grep -q . && return 0
        sleep 0.1
    done
    echo "iperf3 -s did not start: $(cat "$state/iperf3.log")" >&2
    return 1
}

# Waits up to $3 seconds until $2 answers a ping from namespace $1.
wait_ping() {
    local ns=$1 addr=$2 limit=$3
    for _ in $(seq $((limit * 5))); do
        inns "$ns" ping -c 1 -W 1 "$addr" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "no answer from $addr in $ns after ${limit}s" >&2
    return 1
}

load() { cut -d' ' -f1 /proc/loadavg; }

# The median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The CPU time (user + system, in clock ticks, all threads) of the recorded processes whose
# labels are given.
cpu_ticks() {
    local pid label total=0 t
    while read -r pid label; do
        for want in "$@"; do
            [ "$label" = "$want" ] || continue
            # Fields after the ")" of the command name: utime is the 12th, stime the 13th.
            t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
            total=$((total + ${t:-0}))
        done
    done <"$state/pids"
    echo "$total"
}

# Measures path $1 (name) towards address $2 (in a) from b; the processes labelled $3...
# carry it (their CPU time per GB moved is reported). Appends raw lines
# "path metric value load" to $state/raw.
measure() {
    local path=$1 addr=$2 l out streams before bytes ticks=0 total=0
    shift 2
    for streams in 1 4; do
        for _ in $(seq "$runs"); do
            l=$(load)
            before=$(cpu_ticks "$@")
            out=$(inns "$ns_b" iperf3 -c "$addr" -t "$seconds" -P "$streams" -J || true)
            ticks=$((ticks + $(cpu_ticks "$@") - before))
            if ! bytes=$(jq -er '.end.sum_received.bytes' <<<"$out" 2>/dev/null); then
                echo "iperf3 over $path failed: $(jq -r .error <<<"$out" 2>/dev/null)" >&2
                bytes=0
            fi
            total=$((total + bytes))
            out=$(jq -r '.end.sum_received.bits_per_second / 1e9' <<<"$out" 2>/dev/null || echo 0)
            printf '%s tcp%s %.3f %s\n' "$path" "$streams" "$out" "$l" | tee -a "$state/raw" >&2
        done
    done
    if [ $# -gt 0 ] && [ "$total" -gt 0 ]; then
        awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v b="$total" -v p="$path" -v l="$(load)" \
            'BEGIN { printf "%s cpugb %.1f %s\n", p, t / hz / (b / 1e9), l }' | tee -a "$state/raw" >&2
    fi
    for _ in $(seq "$runs"); do
        l=$(load)
        # rtt min/avg/max/mdev = 0.021/0.034/0.108/0.009 ms
        out=$(inns "$ns_b" ping -q -c "$pings" -i 0.002 -s 56 "$addr" | awk -F'[/ ]' '/^rtt/ { print $7, $8 }')
        printf '%s rttmin %s %s\n' "$path" "${out% *}" "$l" | tee -a "$state/raw" >&2
        printf '%s rttavg %s %s\n' "$path" "${out#* }" "$l" | tee -a "$state/raw" >&2
    done
}

bench_bare() {
    measure bare 198.18.0.1
}

bench_dmvpn() {
    local site role addr
    install -m 0600 "$here/lab/dmvpn.psk" "$state/dmvpn.psk"
    for site in a b; do
        if [ $site = a ]; then role=hub addr=10.1.1.1; else role=spoke addr=10.1.1.2; fi
        {
            echo "role: $role"
            echo "tunnel: { interface: dmvpn0, address: $addr/24 }"
            echo "underlay: { address: 198.18.0.$([ $site = a ] && echo 1 || echo 2) }"
            echo "nhrp:"
            echo "  networkId: 1"
            echo "  authentication: \"@lpha\""
            if [ $role = spoke ]; then
                echo "  servers: [{ tunnelAddress: 10.1.1.1, nbmaAddress: 198.18.0.1 }]"
            fi
            echo "ipsec:"
            echo "  preSharedKeyFile: dmvpn.psk"
            echo "  ike: [aes256gcm16-prfsha384-x25519]"
            echo "  esp: [aes256gcm16]"
            echo "  mode: transport"
            echo "admin: { socket: $state/dmvpn-$site.sock }"
        } >"$state/dmvpn-$site.yaml"
        spawn "dmvpn-$site" ip netns exec "$prefix-$site" "$agent" run --config "$state/dmvpn-$site.yaml"
    done
    wait_ping "$ns_b" 10.1.1.1 20
    measure kube-dmvpn 10.1.1.1 dmvpn-a dmvpn-b
    stop dmvpn-b
    stop dmvpn-a
}

# Userspace WireGuard $1 (boringtun or wireguard-go) on 10.$2.0.0/24, interfaces named
# $3a and $3b (UAPI sockets live in the shared /var/run/wireguard, so names must differ).
bench_wg() {
    local path=$1 net=$2 dev=$3 site peer
    for site in a b; do
        (umask 077 && wg genkey >"$state/$dev-$site.key")
        wg pubkey <"$state/$dev-$site.key" >"$state/$dev-$site.pub"
    done
    for site in a b; do
        if [ "$path" = boringtun ]; then
            spawn "$dev$site" ip netns exec "$prefix-$site" "$boringtun" \
                --foreground --disable-drop-privileges "$dev$site"
        else
            spawn "$dev$site" ip netns exec "$prefix-$site" wireguard-go -f "$dev$site"
        fi
    done
    for site in a b; do
        for _ in $(seq 50); do
            [ -S "/var/run/wireguard/$dev$site.sock" ] && break
            sleep 0.1
        done
    done
    for site in a b; do
        if [ $site = a ]; then peer=b; else peer=a; fi
        inns "$prefix-$site" wg set "$dev$site" listen-port 51820 \
            private-key "$state/$dev-$site.key" \
            peer "$(cat "$state/$dev-$peer.pub")" \
            endpoint "198.18.0.$([ $peer = a ] && echo 1 || echo 2):51820" \
            allowed-ips "10.$net.0.$([ $peer = a ] && echo 1 || echo 2)/32"
        inns "$prefix-$site" ip addr add "10.$net.0.$([ $site = a ] && echo 1 || echo 2)/24" \
            dev "$dev$site"
        inns "$prefix-$site" ip link set "$dev$site" mtu 1420 up
    done
    wait_ping "$ns_b" "10.$net.0.1" 20
    measure "$path" "10.$net.0.1" "${dev}a" "${dev}b"
    stop "${dev}b"
    stop "${dev}a"
}

# charon with kernel-libipsec in namespace $1, inner address $2, peer underlay $3, peer inner
# $4; its own strongswan.conf (explicit plugins, fwmark so its UDP bypasses ipsec0) and /run,
# as ../shared/interop/README.md describes. Its files live outside /run (which it replaces).
charon_start() {
    local site=$1 inner=$2 peer=$3 peer_inner=$4 dir=$charon_dir-$1 local_addr
    local_addr=198.18.0.$([ "$site" = a ] && echo 1 || echo 2)
    rm -rf "$dir"
    mkdir -p "$dir/run" "$dir/swanctl"
    cat >"$dir/strongswan.conf" <<EOF
charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  plugins {
    vici { socket = unix://$dir/charon.vici }
    kernel-netlink { fwmark = !0x42 }
    socket-default { fwmark = 0x42 }
  }
  filelog { bench { path = $dir/charon.log
    default = 1 } }
}
swanctl { load = pem pkcs1 x509 pubkey openssl }
EOF
    cat >"$dir/swanctl/swanctl.conf" <<EOF
connections {
  bench {
    version = 2
    local_addrs = $local_addr
    remote_addrs = $peer
    proposals = aes256gcm16-prfsha384-x25519
    encap = yes
    local { auth = psk
      id = $local_addr }
    remote { auth = psk
      id = $peer }
    children {
      bench {
        mode = tunnel
        local_ts = $inner/32
        remote_ts = $peer_inner/32
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
secrets {
  ike-bench {
    id-1 = $local_addr
    id-2 = $peer
    secret = "$(cat "$here/lab/dmvpn.psk")"
  }
}
EOF
    inns "$prefix-$site" ip addr add "$inner/32" dev lo
    # ip netns exec and unshare (without --fork) exec in place: the PID is charon's. "$0" is
    # expanded by that sh, not here.
    # shellcheck disable=SC2016
    spawn "charon-$site" env STRONGSWAN_CONF="$dir/strongswan.conf" \
        ip netns exec "$prefix-$site" unshare -m --propagation private \
        sh -c 'mount --bind "$0" /run && exec /usr/lib/ipsec/charon' "$dir/run"
    for _ in $(seq 100); do
        [ -S "$dir/charon.vici" ] && break
        sleep 0.1
    done
    swanctl_in "$site" --load-all --file "$dir/swanctl/swanctl.conf" >>"$state/charon-$site.log" 2>&1
}

swanctl_in() {
    local site=$1 dir=$charon_dir-$1
    shift
    STRONGSWAN_CONF=$dir/strongswan.conf swanctl "$@" --uri "unix://$dir/charon.vici"
}

bench_strongswan() {
    charon_start a 10.4.0.1 198.18.0.2 10.4.0.2
    charon_start b 10.4.0.2 198.18.0.1 10.4.0.1
    swanctl_in b --initiate --child bench >>"$state/charon-b.log" 2>&1
    wait_ping "$ns_b" 10.4.0.1 20
    measure strongswan 10.4.0.1 charon-a charon-b
    stop charon-b
    stop charon-a
}

# The seed's three sites (as e2e/lab.sh builds them, in dmvpn-bench-lab-* namespaces); prints
# the shortcut time in ms of one fresh lab.
shortcut_once() {
    local p=$prefix-lab site n nbma pcap=$state/shortcut.pcap
    ip netns add "$p-inet"
    inns "$p-inet" ip link set lo up
    inns "$p-inet" ip link add inet type bridge
    inns "$p-inet" ip link set inet up
    for site in hub spoke1 spoke2; do
        case $site in hub) n=1 ;; spoke1) n=2 ;; spoke2) n=3 ;; esac
        nbma=198.18.0.$n
        ip netns add "$p-$site"
        ip netns add "$p-$site-lan"
        inns "$p-$site" ip link set lo up
        inns "$p-$site-lan" ip link set lo up
        ip -n "$p-$site" link add wan0 type veth peer name "$site" netns "$p-inet"
        # A wire: wan0 cuts UDP GSO sends into datagrams, so the capture sees each one.
        ip -n "$p-$site" link set wan0 gso_max_segs 1
        inns "$p-inet" ip link set "$site" master inet up
        inns "$p-$site" ip addr add "$nbma/15" dev wan0
        inns "$p-$site" ip link set wan0 up
        ip -n "$p-$site" link add lan0 type veth peer name eth0 netns "$p-$site-lan"
        inns "$p-$site" ip addr add "192.168.$n.1/24" dev lan0
        inns "$p-$site" ip link set lan0 up
        inns "$p-$site-lan" ip addr add "192.168.$n.10/24" dev eth0
        inns "$p-$site-lan" ip link set eth0 up
        inns "$p-$site-lan" ip route add default via "192.168.$n.1"
        inns "$p-$site" sysctl -q -w net.ipv4.ip_forward=1
        install -m 0600 "$here/lab/dmvpn.psk" "$state/dmvpn.psk"
        sed "s|^  socket:.*|  socket: $state/lab-$site.sock|" "$here/lab/$site.yaml" \
            >"$state/lab-$site.yaml"
        spawn "lab-$site" ip netns exec "$p-$site" "$agent" run --config "$state/lab-$site.yaml"
    done
    for site in spoke1 spoke2; do
        for _ in $(seq 100); do
            grep -q "registered with NHS" "$state/lab-$site.log" && break
            sleep 0.1
        done
    done
    sleep 0.5
    rm -f "$pcap"
    spawn lab-tcpdump ip netns exec "$p-inet" tcpdump -i spoke1 -n -U -s 128 -w "$pcap" udp port 4500
    sleep 1
    # 1000-byte echo requests: the only ESP packets of their size on this wire.
    inns "$p-spoke1-lan" ping -q -c 500 -i 0.002 -s 1000 192.168.3.10 >/dev/null || true
    sleep 0.5
    stop lab-tcpdump
    stop lab-spoke2
    stop lab-spoke1
    stop lab-hub
    for site in hub spoke1 spoke2; do
        ip netns del "$p-$site-lan"
        ip netns del "$p-$site"
    done
    ip netns del "$p-inet"
    # The first echo request (spoke1 -> hub, its ESP length L) at t0; the first packet of
    # length L between spoke1 and spoke2 at t1.
    tshark -r "$pcap" -T fields -e frame.time_epoch -e ip.src -e ip.dst -e frame.len \
        >"$state/shortcut.txt" 2>/dev/null
    awk '
            $2 == "198.18.0.2" && $3 == "198.18.0.1" && $4 > 1000 && !t0 { t0 = $1; len = $4 }
            t0 && $4 == len && (($2 == "198.18.0.2" && $3 == "198.18.0.3") ||
                                ($2 == "198.18.0.3" && $3 == "198.18.0.2")) { t1 = $1; exit }
            t0 && $4 == len && $3 == "198.18.0.1" { via_hub++ }
            END {
                if (t0 && t1) printf "%.1f %d\n", (t1 - t0) * 1000, via_hub
                else print "- -"
            }' "$state/shortcut.txt"
}

bench_shortcut() {
    local l out
    for _ in $(seq "$runs"); do
        l=$(load)
        out=$(shortcut_once)
        printf 'shortcut ms %s %s\n' "${out% *}" "$l" | tee -a "$state/raw" >&2
        printf 'shortcut via_hub %s %s\n' "${out#* }" "$l" | tee -a "$state/raw" >&2
    done
}

# The median of metric $2 of path $1 and the range of the loads of its runs: "V (load A-B)".
cell() {
    local v loads
    v=$(awk -v p="$1" -v m="$2" '$1 == p && $2 == m { print $3 }' "$state/raw" | median)
    loads=$(awk -v p="$1" -v m="$2" '$1 == p && $2 == m { print $4 }' "$state/raw" | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi }')
    echo "$v (load $loads)"
}

val() { awk -v p="$1" -v m="$2" '$1 == p && $2 == m { print $3 }' "$state/raw" | median; }

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}

# The difference of metric $3 (ms) between paths $1 and $2, in µs.
added() {
    awk -v a="$(val "$1" "$3")" -v b="$(val "$2" "$3")" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.0f", (a - b) * 1000 }'
}

report() {
    local path
    {
        echo "## e2e/bench.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $runs run(s) each, median (load average range)"
        echo
        echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernel $(uname -r)"
        echo
        echo "| path | TCP x1 Gbit/s | TCP x4 Gbit/s | RTT min ms | RTT avg ms | tunnel CPU-s per GB |"
        echo "|---|---:|---:|---:|---:|---:|"
        for path in bare kube-dmvpn boringtun wireguard-go strongswan; do
            grep -q "^$path " "$state/raw" || continue
            echo "| $path | $(cell "$path" tcp1) | $(cell "$path" tcp4) | $(cell "$path" rttmin) | $(cell "$path" rttavg) | $(val "$path" cpugb) |"
        done
        if grep -q "^kube-dmvpn " "$state/raw"; then
            echo
            echo "| kube-dmvpn against | TCP x1 ratio | TCP x4 ratio | added RTT min µs | added RTT avg µs | CPU per GB ratio |"
            echo "|---|---:|---:|---:|---:|---:|"
            for path in bare boringtun wireguard-go strongswan; do
                grep -q "^$path " "$state/raw" || continue
                echo "| $path | $(ratio "$(val kube-dmvpn tcp1)" "$(val "$path" tcp1)") |" \
                    "$(ratio "$(val kube-dmvpn tcp4)" "$(val "$path" tcp4)") |" \
                    "$(added kube-dmvpn "$path" rttmin) | $(added kube-dmvpn "$path" rttavg) |" \
                    "$(ratio "$(val kube-dmvpn cpugb)" "$(val "$path" cpugb)") |"
            done
        fi
        if grep -q "^shortcut " "$state/raw"; then
            echo
            echo "Shortcut (first spoke1 -> spoke2 echo request to the first one sent directly): $(cell shortcut ms) ms;" \
                "echo packets through the hub meanwhile: $(val shortcut via_hub)"
        fi
    } | tee "$state/results.md"
}

main() {
    while [ $# -gt 0 ]; do
        case $1 in
        --quick)
            runs=1 seconds=3 pings=200
            ;;
        --only)
            only=$2
            shift
            ;;
        --no-shortcut) shortcut=no ;;
        down)
            need_root
            [ -d "$state" ] || mkdir -p "$state"
            down
            rm -rf "$state"
            return 0
            ;;
        *)
            echo "usage: e2e/bench.sh [--quick] [--only bare,dmvpn,boringtun,wireguard-go,strongswan] [--no-shortcut] | down" >&2
            exit 2
            ;;
        esac
        shift
    done
    need_root
    need_tools
    mkdir -p "$state"
    down
    rm -rf "$state"
    mkdir -p "$state"
    build
    trap down EXIT
    pair_up
    local path
    for path in ${only//,/ }; do
        log "$path"
        case $path in
        bare) bench_bare ;;
        dmvpn) bench_dmvpn ;;
        boringtun) bench_wg boringtun 2 bt ;;
        wireguard-go) bench_wg wireguard-go 3 wgo ;;
        strongswan) bench_strongswan ;;
        *)
            echo "unknown path $path" >&2
            exit 2
            ;;
        esac
    done
    if [ $shortcut = yes ]; then
        log "shortcut time on the seed's three sites"
        bench_shortcut
    fi
    report
}

main "$@"
