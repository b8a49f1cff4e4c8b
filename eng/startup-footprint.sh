#!/usr/bin/env bash
# Startup and footprint of samples/Gateway (or, with "tool", the meshgateway command), Native AOT against the JIT
# (framework-dependent Release) build: file size, time from exec to the "Mesh gateway listening" log line, and RSS once
# idle (2 s after the embedded demo call; for the command, 2 s after its ready line, on a one-route routes file), over N
# rounds (default 5). Loopback only; every process is stopped by PID.
#   bash eng/startup-footprint.sh [rounds] [gateway|tool]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-5}
what=${2:-gateway}
base=${MG_ARTIFACTS:-$PWD/artifacts}/startup-$what
rm -rf "$base"
if [ "$what" = tool ]; then
  project=src/MeshGateway.Tool/MeshGateway.Tool.csproj; name=meshgateway; idle='^meshgateway: ready'
  routes=$(mktemp); printf '{"routes":[{"sni":"web.example","endpoints":["127.0.0.1:9"]}]}' >"$routes"
  args=(-routes-file "$routes" -address 127.0.0.1:0)
else
  project=samples/Gateway/Gateway.csproj; name=MeshGateway.Sample.Gateway; idle='demo call through the gateway'
  args=(--MeshGateway:Port=0)
fi
dotnet publish "$project" -c Release -r linux-x64 -p:PublishAot=true -o "$base/aot" >/dev/null
dotnet publish "$project" -c Release -r linux-x64 --self-contained false -o "$base/jit" >/dev/null
pid=
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; [ -n "${routes:-}" ] && rm -f "$routes"' EXIT
measure() { # $1 label, $2 binary
  local log t0 t1 rss
  for r in $(seq 1 "$rounds"); do
    log=$(mktemp)
    t0=$(date +%s%N)
    "$2" "${args[@]}" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 2000); do grep -q 'Mesh gateway listening' "$log" && break; sleep 0.005; done
    t1=$(date +%s%N)
    for _ in $(seq 1 400); do grep -q "$idle" "$log" && break; sleep 0.05; done
    sleep 2
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
    echo "$1 round $r: listening after $(( (t1 - t0) / 1000000 )) ms, idle RSS $((rss / 1024)) MiB"
    rm -f "$log"
  done
}
echo "aot: $(stat -c %s "$base/aot/$name") bytes (single file); jit: $(du -cb "$base"/jit/*.dll "$base/jit/$name" | tail -1 | cut -f1) bytes of app + libraries (plus the shared runtime)"
measure aot "$base/aot/$name"
measure jit "$base/jit/$name"
