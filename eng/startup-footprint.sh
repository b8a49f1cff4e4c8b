#!/usr/bin/env bash
# Startup and footprint of samples/Gateway, Native AOT against the JIT (framework-dependent Release) build:
# file size, time from exec to the "Mesh gateway listening" log line, and RSS once idle (2 s after the embedded demo
# call), over N rounds (default 5). Loopback only; every process is stopped by PID.
#   bash eng/startup-footprint.sh [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-5}
base=${MG_ARTIFACTS:-$PWD/artifacts}/startup
rm -rf "$base"
dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 -p:PublishAot=true -o "$base/aot" >/dev/null
dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 --self-contained false -o "$base/jit" >/dev/null
pid=
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true' EXIT
measure() { # $1 label, $2 binary
  local log t0 t1 rss
  for r in $(seq 1 "$rounds"); do
    log=$(mktemp)
    t0=$(date +%s%N)
    "$2" --MeshGateway:Port=0 >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 2000); do grep -q 'Mesh gateway listening' "$log" && break; sleep 0.005; done
    t1=$(date +%s%N)
    for _ in $(seq 1 400); do grep -q 'demo call through the gateway' "$log" && break; sleep 0.05; done
    sleep 2
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
    echo "$1 round $r: listening after $(( (t1 - t0) / 1000000 )) ms, idle RSS $((rss / 1024)) MiB"
    rm -f "$log"
  done
}
echo "aot: $(stat -c %s "$base/aot/MeshGateway.Sample.Gateway") bytes (single file); jit: $(du -cb "$base"/jit/*.dll "$base/jit/MeshGateway.Sample.Gateway" | tail -1 | cut -f1) bytes of app + libraries (plus the shared runtime)"
measure aot "$base/aot/MeshGateway.Sample.Gateway"
measure jit "$base/jit/MeshGateway.Sample.Gateway"
