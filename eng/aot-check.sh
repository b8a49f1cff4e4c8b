#!/usr/bin/env bash
# Native AOT check: publishes samples/Gateway (Hosting + Core + Consul, configuration binding, logging, health checks)
# with PublishAot=true and fails on any trimming or AOT warning (IL2xxx/IL3xxx are errors here), then starts the
# native binary once in its embedded-demo mode and expects the demo call through the gateway to succeed.
#   bash eng/aot-check.sh            # needs the linux-x64 ILCompiler pack (Microsoft.DotNet.ILCompiler 10.0.14, pinned)
# MG_ARTIFACTS (if set) keeps bin/obj out of the tree, as for every other build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${MG_ARTIFACTS:-$PWD/artifacts}/aot-check
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)

dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 -p:MeshGatewayPublishAot=true \
  -p:TreatWarningsAsErrors=true -p:IlcTreatWarningsAsErrors=true -p:SuppressTrimAnalysisWarnings=false \
  -p:TrimmerSingleWarn=false -o "$out" 2>&1 | tee "$log"
if grep -E '(warning|error) (IL[0-9]{4}|NETSDK|CS)' "$log" >/dev/null; then
  echo "aot-check: trimming/AOT warnings found (see above)" >&2
  exit 1
fi

binary=$out/MeshGateway.Sample.Gateway
[ -x "$binary" ] || { echo "aot-check: $binary was not produced" >&2; exit 1; }
echo "aot-check: native binary $(du -h "$binary" | cut -f1) at $binary"

# Smoke run: the embedded demo calls through the gateway at start; stop it by its PID.
run_log=$(mktemp)
"$binary" --MeshGateway:Port=0 >"$run_log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 60); do
  if grep -q 'demo call through the gateway: Hello from the demo backend' "$run_log"; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
cat "$run_log"
rm -f "$run_log"
[ "$ok" -eq 1 ] || { echo "aot-check: the native gateway did not serve the demo call" >&2; exit 1; }
echo "aot-check: OK in $(( $(date +%s) - start )) s (publish + smoke run), no trimming/AOT warnings"
