#!/usr/bin/env bash
# Native AOT check: publishes samples/Gateway (Hosting + Core + Consul, configuration binding, logging, health checks)
# with PublishAot and fails on any trimming or AOT warning (IL2xxx/IL3xxx), then starts the binary once in its
# embedded-demo mode and expects the demo call through the gateway to succeed.
#   bash eng/aot-check.sh
# The ILCompiler is the pinned Microsoft.DotNet.ILCompiler (Directory.Packages.props). The .NET 10 SDK also needs the
# Microsoft.NETCore.App.Runtime.NativeAOT.linux-x64 runtime pack; when the package feed does not serve it, the script
# says so and falls back to a trimmed self-contained publish (the same ILLink whole-program trimming analysis,
# warnings as errors; the AOT-only IL3xxx analysis already runs at build through IsAotCompatible) and exits 0 only
# if that passes, printing "mode: trimmed" instead of "mode: native-aot".
# MG_ARTIFACTS (if set) keeps bin/obj out of the tree, as for every other build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${MG_ARTIFACTS:-$PWD/artifacts}/aot-check
log=$(mktemp)
run_log=$(mktemp)
trap 'rm -f "$log" "$run_log"' EXIT
start=$(date +%s)
strict=(-p:TreatWarningsAsErrors=true -p:IlcTreatWarningsAsErrors=true -p:SuppressTrimAnalysisWarnings=false -p:TrimmerSingleWarn=false)

mode=native-aot
# MeshGatewayPublishAot, not a global PublishAot: see samples/Gateway/Gateway.csproj.
if ! dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 -p:MeshGatewayPublishAot=true "${strict[@]}" -o "$out" >"$log" 2>&1; then
  if grep -q 'NU1101.*Microsoft.NETCore.App.Runtime.NativeAOT' "$log"; then
    echo "aot-check: the package feed does not serve Microsoft.NETCore.App.Runtime.NativeAOT.linux-x64; running the trimmed publish instead" >&2
    mode=trimmed
    rm -rf "$out"
    dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true "${strict[@]}" -o "$out" >"$log" 2>&1 || { cat "$log"; echo "aot-check: trimmed publish failed" >&2; exit 1; }
  else
    cat "$log"
    echo "aot-check: publish failed" >&2
    exit 1
  fi
fi
cat "$log"
if grep -E '(warning|error) (IL[0-9]{4}|NETSDK[0-9]+|CS[0-9]+)' "$log" >/dev/null; then
  echo "aot-check: trimming/AOT warnings found (see above)" >&2
  exit 1
fi

binary=$out/MeshGateway.Sample.Gateway
[ -x "$binary" ] || { echo "aot-check: $binary was not produced" >&2; exit 1; }
echo "aot-check: $mode binary, $(du -sh "$out" | cut -f1) published at $out"

# Smoke run: the embedded demo calls through the gateway at start; stopped by its PID.
"$binary" --MeshGateway:Port=0 >"$run_log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 120); do
  if grep -q 'demo call through the gateway: Hello from the demo backend' "$run_log"; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
cat "$run_log"
[ "$ok" -eq 1 ] || { echo "aot-check: the published gateway did not serve the demo call" >&2; exit 1; }
echo "aot-check: OK, mode: $mode, $(( $(date +%s) - start )) s (publish + smoke run), no trimming/AOT warnings"
