#!/usr/bin/env bash
# Runs the two-datacenter MeshGateway scenario against real Consul on this machine and prints what happened:
#   dc1 (primary) + dc2 WAN-joined dev agents on loopback, a MeshGateway per DC registered by the SDK
#   (LAN 127.0.0.1, WAN 127.0.0.2), `api` in dc2 = TCP echo behind `consul connect proxy -sidecar-for api`,
#   `web` in dc1 = Connect-native, dialling api with ConsulConnectDialer in modes local / remote / none,
#   then a deny intention. For each mode it prints the deciding level, the path, set-up time and throughput.
#
# Consul: CONSUL_BIN, else `consul` on PATH, else the repository's .tools/consul/consul (eng/install-consul.sh).
# Every process it starts (agents, proxy) is stopped by PID when the run ends, whether it passes or fails.
# Usage: samples/CrossDatacenter/run.sh [extra dotnet test arguments]
# Exit status: non-zero as soon as a scenario fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [[ -z "${CONSUL_BIN:-}" ]]; then
  if command -v consul >/dev/null 2>&1; then
    CONSUL_BIN="$(command -v consul)"
  elif [[ -x "$root/.tools/consul/consul" ]]; then
    CONSUL_BIN="$root/.tools/consul/consul"
  else
    echo "run.sh: no Consul found: put consul on PATH, set CONSUL_BIN, or run: bash eng/install-consul.sh" >&2
    exit 2
  fi
fi
export CONSUL_BIN
echo "Consul: $CONSUL_BIN ($("$CONSUL_BIN" version | head -n 1))"

# 127.0.0.2 is the gateways' WAN address; Linux routes all of 127/8 to loopback, macOS needs an alias.
if [[ "$(uname)" == "Darwin" ]] && ! ifconfig lo0 | grep -q 'inet 127.0.0.2 '; then
  echo "run.sh: on macOS add the address first: sudo ifconfig lo0 alias 127.0.0.2 up" >&2
  exit 2
fi

# 1. The gateways as hosted services: AddMeshGateway().UseConsulCatalog() in a Generic Host per datacenter.
dotnet test "$root/tests/MeshGateway.EndToEndTests" -c Release \
  --logger "console;verbosity=detailed" "$@"

# 2. The same scenario from the building blocks: GatewayListener + ConsulRouteTableSource + ConsulGatewayRegistrar,
#    with median set-up time and throughput over three runs per mode.
dotnet test "$root/tests/MeshGateway.Consul.Tests" -c Release \
  --filter "FullyQualifiedName~EndToEnd.CrossDatacenterTests" \
  --logger "console;verbosity=detailed" "$@"
