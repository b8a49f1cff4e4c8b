#!/usr/bin/env bash
# Native AOT check: publishes samples/Gateway (Hosting + Core + Consul, configuration binding, logging, health checks)
# with exactly the README's command (`dotnet publish samples/Gateway -c Release -r linux-x64 -p:PublishAot=true`) plus
# warnings as errors, fails on ANY warning the build or the ILCompiler targets print (IL2xxx/IL3xxx, NETSDK, NU, and
# warnings without a code such as "warning : Delete explicit 'Microsoft.DotNet.ILCompiler' package reference"), then
# starts the native binary once in its embedded-demo mode and expects the demo call through the gateway to succeed.
#   bash eng/aot-check.sh
# The SDK chooses the ILCompiler version (no central pin, no explicit reference: a pin that differs from the SDK's
# runtime breaks the publish). The Microsoft.NETCore.App.Runtime.NativeAOT.<rid> runtime pack must be served by the
# package feed; when it is not, this is a failure with that cause named, never a silent switch to a weaker check.
# MG_ARTIFACTS (if set) keeps bin/obj out of the tree, as for every other build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${MG_ARTIFACTS:-$PWD/artifacts}/aot-check
log=$(mktemp)
run_log=$(mktemp)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  rm -f "$log" "$run_log"
}
trap cleanup EXIT
start=$(date +%s)
rm -rf "$out"

if ! dotnet publish samples/Gateway/Gateway.csproj -c Release -r linux-x64 -p:PublishAot=true \
     -p:TreatWarningsAsErrors=true -p:IlcTreatWarningsAsErrors=true -p:SuppressTrimAnalysisWarnings=false \
     -p:TrimmerSingleWarn=false -o "$out" >"$log" 2>&1; then
  cat "$log"
  if grep -q 'NU1101.*Microsoft.NETCore.App.Runtime.NativeAOT' "$log"; then
    echo "aot-check: FAILED: the package feed does not serve the Native AOT runtime pack (Microsoft.NETCore.App.Runtime.NativeAOT.linux-x64, the version of the SDK's runtime); Native AOT cannot be checked without it" >&2
  else
    echo "aot-check: FAILED: the Native AOT publish failed (see above)" >&2
  fi
  exit 1
fi
cat "$log"
# Any MSBuild warning line: "file(l,c): warning CODE: text", "EXEC : warning : text", "warning : text" (no code).
if grep -E '(^|[[:space:]:])warning( [A-Za-z]+[0-9]+)?[[:space:]]*:' "$log" >/dev/null; then
  echo "aot-check: FAILED: the publish printed warnings (listed below); Native AOT must publish with none" >&2
  grep -E '(^|[[:space:]:])warning( [A-Za-z]+[0-9]+)?[[:space:]]*:' "$log" | sort -u >&2
  exit 1
fi
grep -q 'Generating native code' "$log" || { echo "aot-check: FAILED: the ILCompiler did not run (no 'Generating native code')" >&2; exit 1; }

binary=$out/MeshGateway.Sample.Gateway
[ -x "$binary" ] || { echo "aot-check: FAILED: $binary was not produced" >&2; exit 1; }
# A native executable, not a JIT apphost: no managed entry assembly beside it.
[ ! -e "$out/MeshGateway.Sample.Gateway.dll" ] || { echo "aot-check: FAILED: a managed MeshGateway.Sample.Gateway.dll was published: not a Native AOT build" >&2; exit 1; }
echo "aot-check: mode: native-aot, binary $(stat -c %s "$binary") bytes at $binary"

# Smoke run: the embedded demo calls through the gateway at start; stopped by its PID (also on failure, by the trap).
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
pid=
cat "$run_log"
[ "$ok" -eq 1 ] || { echo "aot-check: FAILED: the published gateway did not serve the demo call" >&2; exit 1; }
echo "aot-check: OK, mode: native-aot, $(( $(date +%s) - start )) s (publish + smoke run), no warnings"
