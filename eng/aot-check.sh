#!/usr/bin/env bash
# Native AOT check: publishes samples/Gateway (Hosting + Core + Consul, configuration binding, logging, health checks)
# with exactly the README's command (`dotnet publish samples/Gateway -c Release -r linux-x64 -p:PublishAot=true`) plus
# warnings as errors, fails on ANY warning the build or the ILCompiler targets print (IL2xxx/IL3xxx, NETSDK, NU, and
# warnings without a code such as "warning : Delete explicit 'Microsoft.DotNet.ILCompiler' package reference"), then
# starts the native binary once in its embedded-demo mode and expects the demo call through the gateway to succeed.
# Then the same for the meshgateway command (src/MeshGateway.Tool): the same warning-free publish, a smoke run of the
# native executable (--help exits 0, a bad flag exits 2, a start on a routes file is ready and stops cleanly on SIGTERM),
# then the command's own test project (tests/MeshGateway.Tool.Tests: usage, dry run, -register against a real Consul
# agent, SIGTERM drain) run against the native executable (MG_MESHGATEWAY_BINARY) instead of `dotnet exec`.
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
routes=$(mktemp)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  rm -f "$log" "$run_log" "$routes"
}
trap cleanup EXIT
start=$(date +%s)
rm -rf "$out"

# publish PROJECT OUT: the Native AOT publish with warnings as errors; fails on any warning line or a missing ILCompiler run.
publish() {
  if ! dotnet publish "$1" -c Release -r linux-x64 -p:PublishAot=true \
       -p:TreatWarningsAsErrors=true -p:IlcTreatWarningsAsErrors=true -p:SuppressTrimAnalysisWarnings=false \
       -p:TrimmerSingleWarn=false -o "$2" >"$log" 2>&1; then
    cat "$log"
    if grep -q 'NU1101.*Microsoft.NETCore.App.Runtime.NativeAOT' "$log"; then
      echo "aot-check: FAILED: the package feed does not serve the Native AOT runtime pack (Microsoft.NETCore.App.Runtime.NativeAOT.linux-x64, the version of the SDK's runtime); Native AOT cannot be checked without it" >&2
    else
      echo "aot-check: FAILED: the Native AOT publish of $1 failed (see above)" >&2
    fi
    exit 1
  fi
  cat "$log"
  # Any MSBuild warning line: "file(l,c): warning CODE: text", "EXEC : warning : text", "warning : text" (no code).
  if grep -E '(^|[[:space:]:])warning( [A-Za-z]+[0-9]+)?[[:space:]]*:' "$log" >/dev/null; then
    echo "aot-check: FAILED: the publish of $1 printed warnings (listed below); Native AOT must publish with none" >&2
    grep -E '(^|[[:space:]:])warning( [A-Za-z]+[0-9]+)?[[:space:]]*:' "$log" | sort -u >&2
    exit 1
  fi
  grep -q 'Generating native code' "$log" || { echo "aot-check: FAILED: the ILCompiler did not run for $1 (no 'Generating native code')" >&2; exit 1; }
}

publish samples/Gateway/Gateway.csproj "$out"

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
echo "aot-check: samples/Gateway OK"

# The meshgateway command.
tool_out=${MG_ARTIFACTS:-$PWD/artifacts}/aot-check-tool
rm -rf "$tool_out"
publish src/MeshGateway.Tool/MeshGateway.Tool.csproj "$tool_out"
tool=$tool_out/meshgateway
[ -x "$tool" ] || { echo "aot-check: FAILED: $tool was not produced" >&2; exit 1; }
[ ! -e "$tool_out/meshgateway.dll" ] || { echo "aot-check: FAILED: a managed meshgateway.dll was published: not a Native AOT build" >&2; exit 1; }
echo "aot-check: meshgateway: native-aot, binary $(stat -c %s "$tool") bytes at $tool"
"$tool" --help >/dev/null || { echo "aot-check: FAILED: meshgateway --help did not exit 0" >&2; exit 1; }
set +e; "$tool" -no-such-flag >/dev/null 2>&1; rc=$?; set -e
[ "$rc" -eq 2 ] || { echo "aot-check: FAILED: meshgateway -no-such-flag exited $rc, not 2" >&2; exit 1; }
printf '{"routes":[{"sni":"web.example","endpoints":["127.0.0.1:9"]}]}' >"$routes"
"$tool" -routes-file "$routes" -address 127.0.0.1:0 >"$run_log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 120); do
  if grep -q '^meshgateway: ready' "$run_log"; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
kill -TERM "$pid" 2>/dev/null || true
set +e; wait "$pid"; rc=$?; set -e
pid=
cat "$run_log"
[ "$ok" -eq 1 ] || { echo "aot-check: FAILED: the native meshgateway did not get ready on a routes file" >&2; exit 1; }
[ "$rc" -eq 0 ] || { echo "aot-check: FAILED: the native meshgateway exited $rc after SIGTERM, not 0" >&2; exit 1; }

# The command's tests (real Consul agent for -register and --dry-run), against the native executable.
if [ -x eng/install-consul.sh ] && [ -z "${CONSUL_BIN:-}" ] && ! command -v consul >/dev/null 2>&1; then
  if CONSUL_BIN="$(bash eng/install-consul.sh)"; then export CONSUL_BIN; fi
fi
MG_MESHGATEWAY_BINARY="$tool" dotnet test tests/MeshGateway.Tool.Tests/MeshGateway.Tool.Tests.csproj -c Release \
  || { echo "aot-check: FAILED: tests/MeshGateway.Tool.Tests failed against the native meshgateway" >&2; exit 1; }
echo "aot-check: OK, mode: native-aot, $(( $(date +%s) - start )) s (2 publishes + smoke runs + the command's tests on the native binary), no warnings"
