#!/usr/bin/env bash
# The main job on a fresh machine: install kedge and what it needs, then show it working.
# Re-running is fast and harmless. Each demo stage is one function below; later issues add stages
# (embedded control plane, join an edge, run a pod, a device twin) to STAGES in order.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

KEDGE=("$VENV/bin/kedge")

stage_install() {
    ensure_all
}

stage_version() {
    log "kedge version"
    "${KEDGE[@]}" version
}

stage_help() {
    log "kedge --help"
    "${KEDGE[@]}" --help
}

# ---- the user path on this one machine: embedded control plane, this machine as an edge, a Deployment.
# Everything lives under one root (two sub-roots, one per role); re-running converges. Remove it all with
#   kedge reset edge --root "$QS/edge" --force && kedge reset cloud --root "$QS/cloud" --force --purge
QS="${KEDGE_QUICKSTART_ROOT:-/var/lib/kedge-quickstart}"
QS_API_PORT="${KEDGE_QUICKSTART_API_PORT:-6443}"
QS_HUB_PORT="${KEDGE_QUICKSTART_HUB_PORT:-10000}"
QS_CERT_PORT="${KEDGE_QUICKSTART_CERT_PORT:-10002}"
QS_NODE="${KEDGE_QUICKSTART_NODE:-$(hostname -s | tr '[:upper:]_' '[:lower:]-')}"
QS_MQTT_PORT="${KEDGE_QUICKSTART_MQTT_PORT:-1883}"  # the edge's embedded MQTT broker (127.0.0.1)
QS_KUBECONFIG="$QS/cloud/etc/kedge/admin.kubeconfig"

qs_kubectl() { kubectl --kubeconfig "$QS_KUBECONFIG" "$@"; }

stage_init_embedded() {
    log "kedge init --embedded --root $QS/cloud (API server :$QS_API_PORT, cloud :$QS_HUB_PORT/:$QS_CERT_PORT)"
    "${KEDGE[@]}" init --embedded --root "$QS/cloud" --no-token --advertise-address 127.0.0.1 \
        --apiserver-port "$QS_API_PORT" --set "hub.websocket_port=$QS_HUB_PORT" \
        --set "hub.cert_port=$QS_CERT_PORT"
}

stage_token() {
    log "kedge token create (1 h, for this machine's join)"
    "${KEDGE[@]}" token create --root "$QS/cloud" --ttl 1h --description quickstart -o json \
        | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])' >"$QS/token.new"
    chmod 600 "$QS/token.new" && mv "$QS/token.new" "$QS/token"
}

stage_join() {
    log "kedge join --root $QS/edge --node-name $QS_NODE (this machine as an edge)"
    "${KEDGE[@]}" join --root "$QS/edge" --token "$(cat "$QS/token")" --server "127.0.0.1:$QS_HUB_PORT" \
        --cert-port "$QS_CERT_PORT" --node-name "$QS_NODE" --mqtt embedded --set "mqtt.port=$QS_MQTT_PORT"
}

stage_deploy() {
    log "kubectl apply: Deployment hello (2 x $BUSYBOX_IMAGE) on node $QS_NODE"
    local validate=()
    # kubectl 1.20 (Debian's) validates against a protobuf /openapi/v2 (design.md §8)
    if [ "$(kubectl version --client -o json 2>/dev/null | "$VENV/bin/python" -c \
        'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")) < 21)')" = True ]; then
        validate=(--validate=false)
    fi
    qs_kubectl apply "${validate[@]}" -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      nodeSelector: {kubernetes.io/hostname: $QS_NODE}
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: $BUSYBOX_IMAGE
        command: ["sh", "-c", "echo hello from \$(hostname); exec sleep 86400"]
YAML
    log "waiting until the hello pods are Running"
    local i
    for i in $(seq 1 120); do
        if [ "$(qs_kubectl get pods -l app=hello --field-selector=status.phase=Running -o name | wc -l)" -ge 2 ] \
            && qs_kubectl wait --for=condition=Ready pod -l app=hello --timeout=1s >/dev/null 2>&1; then
            log "hello pods Running after ${i}s"
            return 0
        fi
        sleep 1
    done
    qs_kubectl get pods -o wide >&2
    die "the hello pods did not become Running in 120 s (see $QS/edge/var/log/kedge/edge.log)"
}

stage_show() {
    log "kedge status --root $QS/edge"
    "${KEDGE[@]}" status --root "$QS/edge"
    log "kubectl get nodes,pods -o wide   (KUBECONFIG=$QS_KUBECONFIG)"
    qs_kubectl get nodes,pods -o wide
    log "docker ps: the pods' containers on this machine"
    docker ps --filter "label=io.kedge.node=$QS_NODE" --format 'table {{.ID}}\t{{.Names}}\t{{.Status}}'
}

stage_device() {
    log "kubectl apply: DeviceModel thermostat-model + Device thermostat-01 on node $QS_NODE (KubeEdge CRDs)"
    qs_kubectl apply -f - <<YAML
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: thermostat-model, namespace: default}
spec:
  protocol: mqtt
  properties:
  - {name: temperature, description: measured temperature, type: FLOAT, accessMode: ReadOnly, unit: degree celsius}
  - {name: setpoint, description: target temperature, type: FLOAT, accessMode: ReadWrite, unit: degree celsius}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: thermostat-01, namespace: default}
spec:
  deviceModelRef: {name: thermostat-model}
  nodeName: $QS_NODE
  protocol: {protocolName: mqtt}
  properties:
  - {name: temperature, reportToCloud: true}
  - {name: setpoint, desired: {value: "21.5"}}
YAML
    # one simulated thermostat (scripts/demo_device.py, paho-mqtt) talking to the edge's broker; a
    # re-run replaces the previous one
    local pidfile="$QS/demo-device.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        sleep 0.5
    fi
    log "starting the simulated thermostat: scripts/demo_device.py (log $QS/demo-device.log)"
    nohup "$VENV/bin/python" scripts/demo_device.py --device default/thermostat-01 \
        --host 127.0.0.1 --port "$QS_MQTT_PORT" >"$QS/demo-device.log" 2>&1 &
    echo $! >"$pidfile"
    log "waiting until the thermostat's reports reach DeviceStatus thermostat-01"
    local i value
    for i in $(seq 1 60); do
        value=$(qs_kubectl get devicestatuses thermostat-01 \
            -o jsonpath='{.status.twins[?(@.propertyName=="temperature")].reported.value}' 2>/dev/null || true)
        if [ -n "$value" ]; then
            log "temperature $value reported after ${i}s"
            break
        fi
        sleep 1
    done
    [ -n "$value" ] || die "no report reached DeviceStatus thermostat-01 in 60 s (see $QS/demo-device.log, $QS/edge/var/log/kedge/edge.log)"
    log "kubectl get devicestatuses thermostat-01 -o yaml"
    qs_kubectl get devicestatuses thermostat-01 -o yaml
    cat >&2 <<TXT
==> change the setpoint and watch the thermostat follow it:
    export KUBECONFIG=$QS_KUBECONFIG
    kubectl patch devices.devices.kubeedge.io thermostat-01 --type merge \\
      -p '{"spec":{"properties":[{"name":"temperature","reportToCloud":true},{"name":"setpoint","desired":{"value":"25"}}]}}'
    kubectl get devicestatuses thermostat-01 -w \\
      -o jsonpath='{range .status.twins[*]}{.propertyName}={.reported.value} {end}{"\\n"}'
    tail -f $QS/demo-device.log          # the device's side; stop it: kill \$(cat $QS/demo-device.pid)
TXT
}

STAGES=(stage_install stage_version stage_help
    stage_init_embedded stage_token stage_join stage_deploy stage_device stage_show)

for stage in "${STAGES[@]}"; do
    "$stage"
done
log "quickstart done — cluster: export KUBECONFIG=$QS_KUBECONFIG; remove: kill \$(cat $QS/demo-device.pid); kedge reset edge --root $QS/edge --force && kedge reset cloud --root $QS/cloud --force --purge"
