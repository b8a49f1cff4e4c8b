#!/usr/bin/env bash
# End-to-end benchmark: publishes samples/SniGateway in Release and runs ../shared/bench/peers.sh with it as the
# gateway row, next to direct, HAProxy, nginx and sniproxy. Extra arguments go to peers.sh, for example:
#   bash eng/bench-peers.sh --check-only          # start everything, run the routing checks, stop
#   bash eng/bench-peers.sh --quick               # ~4 min smoke run
#   bash eng/bench-peers.sh                       # full run (~20 min); copy table.txt into docs/benchmarks.md
# Results go to .bench-results/<stamp>/ (ignored by git). PEERS_SH overrides where the harness is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
peers=${PEERS_SH:-$root/../shared/bench/peers.sh}
publish_dir=$root/.tools/snigateway
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
dotnet publish samples/SniGateway -c Release -o "$publish_dir" --nologo -v quiet
binary=$publish_dir/SniGateway
[ -x "$binary" ] || { echo "publish did not produce $binary" >&2; exit 1; }

exec bash "$peers" --results "$root/.bench-results" --gateway-name meshgateway \
  --gateway-cmd "$binary --listen {listen} --routes {routes}" "$@"
