#!/usr/bin/env bash
# Runs every test project of Library.sln in Release (the data-plane ones a second time on the event-loop engine) and
# prints one summary line over all of them:
#   N passed, N failed, N skipped
# Exits non-zero when a test failed, a test host crashed or the build broke. Extra arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

results="${MG_TEST_RESULTS:-$PWD/artifacts/test-results}"
rm -rf "$results"
mkdir -p "$results"

# Real Consul for the adapter tests: use CONSUL_BIN or PATH, else fetch the pinned Debian package once.
if [ -x eng/install-consul.sh ] && [ -z "${CONSUL_BIN:-}" ] && ! command -v consul >/dev/null 2>&1; then
  if CONSUL_BIN="$(bash eng/install-consul.sh)"; then export CONSUL_BIN; fi
fi

set +e
dotnet test Library.sln -c Release --logger "trx" --results-directory "$results" "$@"
rc=$?

# The data-plane test projects once more on the event-loop engine (GatewayIoEngine.EventLoop, Linux only): every
# behaviour they assert must hold on both engines (tests/Shared/TestEngine.cs). Their results count in the summary.
if [ "$(uname -s)" = "Linux" ]; then
  for project in tests/MeshGateway.IntegrationTests tests/MeshGateway.Peering.Tests; do
    MESHGATEWAY_TEST_ENGINE=EventLoop dotnet test "$project" -c Release --no-build --logger "trx;LogFilePrefix=eventloop" --results-directory "$results" "$@"
    engine_rc=$?
    if [ "$engine_rc" -ne 0 ]; then rc=$engine_rc; fi
  done
fi
set -e

passed=0; failed=0; skipped=0; files=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  total=$(get total); executed=$(get executed); p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); a=$(get aborted)
  passed=$((passed + p))
  failed=$((failed + f + e + t + a))
  skipped=$((skipped + total - executed))
done

if [ "$files" -eq 0 ] && [ "$rc" -ne 0 ]; then
  echo "no test results: the build or the test run failed before any test ran" >&2
fi
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
