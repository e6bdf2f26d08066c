#!/usr/bin/env bash
# The kind e2e of kube-dmvpn: one kind cluster per site on kind's one Docker network (the
# underlay), the images built and loaded, the chart installed in each, the example CRs of
# examples/ applied, then checks:
#   - every site's DmvpnNode is Ready;
#   - a pod in the hub site reaches a pod and a ClusterIP Service in spoke1;
#   - with two spokes, spoke1's pod reaches spoke2's and the shortcut shows in spoke1's
#     DmvpnNode status (.status.peers[] with type "shortcut");
#   - deleting the active gateway's agent pod: the DaemonSet's new pod takes the gateway back
#     and traffic flows again;
#   - stopping the active gateway node (its kind container): the operator moves the site to its
#     other worker and traffic flows again.
# Prints one line per check and a cargo-style `test result:` line (scripts/test adds it up).
#
# Needs docker (a running engine), kind, kubectl and either helm or scripts/helm-lint's
# virtualenv (`scripts/helm-lint --setup`), and the images' base images and busybox/agnhost from
# their registries. Environment:
#   SITES="hub spoke1 spoke2"   sites to create (at least hub and spoke1), after examples/<site>.yaml
#   KEEP=1                      leave the clusters up afterwards (delete: kind delete clusters ...)
#   SKIP_BUILD=1                use already built images ghcr.io/kube-dmvpn/dmvpn-*:e2e
#   TIMEOUT=300s                how long to wait for each Ready condition
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

SITES=${SITES:-"hub spoke1 spoke2"}
TIMEOUT=${TIMEOUT:-300s}
TAG=e2e
NS=kube-dmvpn
OPERATOR_IMAGE=ghcr.io/kube-dmvpn/dmvpn-operator:$TAG
AGENT_IMAGE=ghcr.io/kube-dmvpn/dmvpn-agent:$TAG
VENV=${HELM_VENV:-$HOME/.cache/kube-dmvpn/helm-venv}
work=$(mktemp -d)
passed=0
failed=0

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "run.sh: no Docker engine answers" >&2; exit 2; }
# kindsite.py needs PyYAML, and helm-sdkpy where there is no helm binary: the virtualenv has both.
python=python3
[ -x "$VENV/bin/python" ] && python=$VENV/bin/python
if ! command -v helm >/dev/null && ! "$python" -c 'import helm_sdkpy' 2>/dev/null; then
    echo "run.sh: no helm binary and no $VENV with helm-sdkpy (scripts/helm-lint --setup)" >&2
    exit 2
fi
read -r -a sites <<<"$SITES"
if [ "${sites[0]}" != hub ] || [ "${#sites[@]}" -lt 2 ]; then
    echo "run.sh: SITES must start with hub and name a spoke" >&2
    exit 2
fi

cleanup() {
    if [ "${KEEP:-}" != 1 ]; then
        for site in "${sites[@]}"; do kind delete cluster --name "dmvpn-$site" >/dev/null 2>&1 || true; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# check NAME COMMAND...: runs a check, counts it, and prints its verdict.
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "e2e $name ... ok"
    else
        failed=$((failed + 1))
        echo "e2e $name ... FAILED"
    fi
}

# kc SITE ARGS...: kubectl against a site's cluster.
kc() {
    local site=$1
    shift
    kubectl --context "kind-dmvpn-$site" "$@"
}

# The site's index gives it its own pod and service CIDRs: the overlay routes between them.
site_index() {
    local i=0
    for s in "${sites[@]}"; do
        [ "$s" = "$1" ] && { echo $((i + 1)); return; }
        i=$((i + 1))
    done
}
pod_cidr() { echo "10.$((10 * $(site_index "$1"))).0.0/16"; }
service_cidr() { echo "10.$((10 * $(site_index "$1") + 100)).0.0/16"; }
# The seed's LANs (192.168.1.0/24 at the hub, .2 at spoke1, .3 at spoke2) stand for the sites'
# pod and service CIDRs: kindsite.py adapt rewrites the examples' prefixes with this map.
lan_map() {
    local s
    for s in "${sites[@]}"; do
        echo "192.168.$(site_index "$s").0/24=$(pod_cidr "$s"),$(service_cidr "$s")"
    done
}

create_site() {
    local site=$1
    cat >"$work/$site-kind.yaml" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  podSubnet: $(pod_cidr "$site")
  serviceSubnet: $(service_cidr "$site")
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF
    kind create cluster --name "dmvpn-$site" --config "$work/$site-kind.yaml" --wait 180s
    kind load docker-image --name "dmvpn-$site" "$OPERATOR_IMAGE" "$AGENT_IMAGE"
    # The workers are the gateway candidates: they get the labels of the site's node selector.
    local labels
    labels=$("$python" e2e/kind/kindsite.py selector "examples/$site.yaml")
    for node in $(kc "$site" get nodes -l '!node-role.kubernetes.io/control-plane' -o name); do
        # shellcheck disable=SC2086 # one argument per label
        [ -z "$labels" ] || kc "$site" label --overwrite "$node" $labels
    done
    # The same Secrets (PSK, NHRP authentication) in every site, before the CRs need them.
    kc "$site" create namespace "$NS" --dry-run=client -o yaml | kc "$site" apply -f -
    while read -r name key; do
        [ -n "$name" ] || continue
        kc "$site" -n "$NS" create secret generic "$name" --from-literal="$key=$(cat "$work/secret-$name")" \
            --dry-run=client -o yaml | kc "$site" apply -f -
    done < <("$python" e2e/kind/kindsite.py secrets "examples/$site.yaml")
    local values='{"operator":{"image":{"tag":"'$TAG'","pullPolicy":"Never"}},"agent":{"image":{"tag":"'$TAG'","pullPolicy":"Never"}}}'
    echo "$values" >"$work/values.json"
    if command -v helm >/dev/null; then
        helm --kube-context "kind-dmvpn-$site" install kube-dmvpn charts/kube-dmvpn -n "$NS" \
            --create-namespace --wait --timeout 5m -f "$work/values.json"
    else
        # kind writes its contexts into the first file of $KUBECONFIG, else ~/.kube/config.
        local kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
        "$python" e2e/kind/kindsite.py install "${kubeconfig%%:*}" "kind-dmvpn-$site" \
            "$root/charts/kube-dmvpn" "$NS" "$work/values.json"
    fi
}

# node_ready SITE: the site's DmvpnNode exists and is Ready.
node_ready() {
    local site=$1 deadline=$((SECONDS + ${TIMEOUT%s}))
    until [ -n "$(kc "$site" get dmvpnnodes -o name 2>/dev/null)" ]; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 2
    done
    kc "$site" wait dmvpnnodes --all --for=condition=Ready --timeout="$TIMEOUT"
}

# site_status SITE FIELD: a status field of the site's DmvpnHub or DmvpnSpoke.
site_status() {
    local kind=dmvpnspokes
    [ "$1" = hub ] && kind=dmvpnhubs
    kc "$1" get "$kind" -o jsonpath="{.items[0].status.$2}"
}

# A server pod (agnhost netexec: /hostname over HTTP) and its ClusterIP Service in a site.
serve() {
    local site=$1
    kc "$site" create deployment echo --image=registry.k8s.io/e2e-test-images/agnhost:2.53 \
        --port=8080 -- /agnhost netexec --http-port=8080
    kc "$site" expose deployment echo --port=80 --target-port=8080
    kc "$site" rollout status deployment/echo --timeout="$TIMEOUT"
    kc "$site" run client --image=busybox:1.36 --restart=Never -- sleep 100000
    kc "$site" wait pod/client --for=condition=Ready --timeout="$TIMEOUT"
}

# reach FROM_SITE URL: the client pod of FROM_SITE fetches URL (retrying while routes settle).
reach() {
    local from=$1 url=$2 i
    for i in $(seq 1 30); do
        kc "$from" exec client -- wget -q -T 3 -O - "$url" >/dev/null 2>&1 && return 0
        sleep 2
    done
    return 1
}

pod_ip() { kc "$1" get pods -l app=echo -o jsonpath='{.items[0].status.podIP}'; }
service_ip() { kc "$1" get service echo -o jsonpath='{.spec.clusterIP}'; }

shortcut_in_status() {
    local deadline=$((SECONDS + ${TIMEOUT%s}))
    until [ -n "$(kc spoke1 get dmvpnnodes -o jsonpath='{.items[*].status.peers[?(@.type=="shortcut")].tunnelAddress}')" ]; do
        [ $SECONDS -lt "$deadline" ] || return 1
        reach spoke1 "http://$(pod_ip spoke2):8080/hostname" || true
        sleep 5
    done
}

# Deletes the agent pod of spoke1's active gateway node; the new pod must bring it back.
agent_pod_restart() {
    local node
    node=$(site_status spoke1 activeNode)
    [ -n "$node" ] || return 1
    kc spoke1 -n "$NS" delete pod -l app.kubernetes.io/component=agent --field-selector "spec.nodeName=$node" --wait=true
    kc spoke1 -n "$NS" rollout status daemonset/kube-dmvpn-agent --timeout="$TIMEOUT"
    node_ready spoke1 && reach hub "http://$(pod_ip spoke1):8080/hostname"
}

# Stops spoke1's active gateway node; the operator must move the site to the other worker.
gateway_failover() {
    local node new deadline=$((SECONDS + ${TIMEOUT%s}))
    node=$(site_status spoke1 activeNode)
    [ -n "$node" ] || return 1
    docker stop "$node" >/dev/null
    until new=$(site_status spoke1 activeNode) && [ -n "$new" ] && [ "$new" != "$node" ]; do
        [ $SECONDS -lt "$deadline" ] || { docker start "$node" >/dev/null; return 1; }
        sleep 5
    done
    echo "    spoke1 gateway moved from $node to $new"
    local ok=0
    if ! node_ready spoke1 || ! reach hub "http://$(pod_ip spoke1):8080/hostname"; then ok=1; fi
    docker start "$node" >/dev/null
    return $ok
}

for site in "${sites[@]}"; do
    [ -f "examples/$site.yaml" ] || { echo "run.sh: examples/$site.yaml is missing" >&2; exit 2; }
done
for name in $(for site in "${sites[@]}"; do "$python" e2e/kind/kindsite.py secrets "examples/$site.yaml"; done | awk '{print $1}' | sort -u); do
    head -c 32 /dev/urandom | base64 >"$work/secret-$name"
done

if [ "${SKIP_BUILD:-}" != 1 ]; then
    docker build -f images/operator/Dockerfile -t "$OPERATOR_IMAGE" .
    docker build -f images/agent/Dockerfile -t "$AGENT_IMAGE" .
fi
for site in "${sites[@]}"; do
    create_site "$site"
done

# The hub first: the spokes need its gateway's address on the Docker network.
mapfile -t lans < <(lan_map)
"$python" e2e/kind/kindsite.py adapt examples/hub.yaml - "${lans[@]}" >"$work/hub-cr.yaml"
kc hub apply -f "$work/hub-cr.yaml"
check "hub DmvpnNode Ready" node_ready hub
hub_nbma=$(site_status hub nbmaAddress)
[ -n "$hub_nbma" ] || hub_nbma=$(kc hub get dmvpnnodes -o jsonpath='{.items[0].metadata.annotations.dmvpn\.io/gateway-address}')
echo "    hub NBMA address $hub_nbma"
for site in "${sites[@]:1}"; do
    "$python" e2e/kind/kindsite.py adapt "examples/$site.yaml" "$hub_nbma" "${lans[@]}" >"$work/$site-cr.yaml"
    kc "$site" apply -f "$work/$site-cr.yaml"
done
for site in "${sites[@]:1}"; do
    check "$site DmvpnNode Ready" node_ready "$site"
done

for site in "${sites[@]}"; do serve "$site"; done
check "hub pod -> spoke1 pod" reach hub "http://$(pod_ip spoke1):8080/hostname"
check "hub pod -> spoke1 ClusterIP service" reach hub "http://$(service_ip spoke1)/hostname"
check "spoke1 pod -> hub pod" reach spoke1 "http://$(pod_ip hub):8080/hostname"
if [[ " ${sites[*]} " == *" spoke2 "* ]]; then
    check "spoke1 pod -> spoke2 pod" reach spoke1 "http://$(pod_ip spoke2):8080/hostname"
    check "spoke1 pod -> spoke2 ClusterIP service" reach spoke1 "http://$(service_ip spoke2)/hostname"
    check "spoke1-spoke2 shortcut in DmvpnNode status" shortcut_in_status
fi
check "agent pod restart on the active gateway" agent_pod_restart
check "gateway node failover" gateway_failover

verdict=ok
[ "$failed" -eq 0 ] || verdict=FAILED
echo "test result: $verdict. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
[ "$failed" -eq 0 ]
