#!/usr/bin/env bash
# End-to-end benchmark: publishes samples/SniGateway in Release and runs ../shared/bench/peers.sh with it as the
# gateway row, next to direct, HAProxy, nginx and sniproxy. Extra arguments go to peers.sh, for example:
#   bash eng/bench-peers.sh --check-only          # start everything, run the routing checks, stop
#   bash eng/bench-peers.sh --quick               # ~4 min smoke run
#   bash eng/bench-peers.sh                       # full run (~20 min); copy table.txt into docs/benchmarks.md
#   bash eng/bench-peers.sh --aot ...             # the same with the Native AOT build as the gateway row (meshgateway-aot)
# Results go to .bench-results/<stamp>/ (ignored by git). PEERS_SH overrides where the harness is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
peers=${PEERS_SH:-$root/../shared/bench/peers.sh}
publish_dir=$root/.tools/snigateway
aot=0
if [ "${1:-}" = "--aot" ]; then
  aot=1
  shift
  publish_dir=$root/.tools/snigateway-aot
fi
[ -x "$peers" ] || [ -f "$peers" ] || { echo "peers.sh not found at $peers (set PEERS_SH)" >&2; exit 2; }

# The harness's Debian packages (see ../shared/bench/README.md). Installing them may start the packaged services,
# which listen on :80/:443; stop them by the PID in their pid files so they cannot disturb the run.
missing=0
for bin in haproxy nginx sniproxy wrk curl openssl; do
  command -v "$bin" >/dev/null 2>&1 || missing=1
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing=1
if [ "$missing" -eq 1 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y haproxy nginx libnginx-mod-stream sniproxy wrk curl openssl
  for pidfile in /run/nginx.pid /run/haproxy.pid /var/run/sniproxy.pid; do
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then
        echo "stopping the packaged service with PID $pid ($pidfile)"
        $sudo kill "$pid" || true
      fi
    fi
  done
fi

# A published Release build, not `dotnet run`: the SDK's processes would count toward the gateway's CPU and RSS.
# ReadyToRun: precompiled code, so the JIT does not run during the first measured seconds.
rid=linux-$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
# --aot: the same program published with Native AOT (the row is named meshgateway-aot).
gateway_name=meshgateway
if [ "$aot" -eq 1 ]; then
  dotnet publish samples/SniGateway -c Release -r "$rid" -p:PublishAot=true -o "$publish_dir" --nologo -v quiet
  gateway_name=meshgateway-aot
else
  dotnet publish samples/SniGateway -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o "$publish_dir" --nologo -v quiet
fi
binary=$publish_dir/SniGateway
[ -x "$binary" ] || { echo "publish did not produce $binary" >&2; exit 1; }

# Runtime settings for a dedicated gateway process (docs/data-plane.md has the measurements); GATEWAY_ENV overrides:
# - socket continuations run on the sockets engine's threads instead of hopping to the thread pool: the splice loops
#   only issue the next non-blocking call, which is the case this switch is for;
# - one sockets engine thread (with inline completions the runtime starts one per core): the whole data path then
#   runs on one event loop, as sniproxy's and each nginx worker's does, instead of two threads waking each other on
#   a 2-core box shared with the client and the backend (issue 15, docs/benchmarks.md: CPU per new connection and
#   per keep-alive request about a fifth lower; connections/s at 128 concurrent handshakes varied between runs); a
#   host meant to use N cores for the data path sets N;
# - a 4 MiB gen0 budget keeps peak RSS ~12 MiB lower at no measurable CPU cost (env only: no runtimeconfig knob).
gateway_env=${GATEWAY_ENV-DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT=1 DOTNET_GCgen0size=0x400000}
# GATEWAY_ARGS: SniGateway arguments beyond --listen and --routes; default the event-loop engine (GatewayIoEngine.EventLoop,
# docs/data-plane.md). The sockets engine's row: GATEWAY_ARGS="--engine sockets"; splice(2) for bulk data (sockets engine):
# GATEWAY_ARGS="--engine sockets --splice-pipes 1024"; the event loop without its pause after bulk reads:
# GATEWAY_ARGS="--engine event-loop --event-loop-bulk-pause-us 0". GATEWAY_NAME renames the row (to compare variants side by side).
gateway_args=${GATEWAY_ARGS---engine event-loop}
gateway_name=${GATEWAY_NAME:-$gateway_name}
exec bash "$peers" --results "$root/.bench-results" --gateway-name "$gateway_name" \
  --gateway-cmd "env $gateway_env $binary --listen {listen} --routes {routes} $gateway_args" "$@"
