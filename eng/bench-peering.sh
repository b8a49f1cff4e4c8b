#!/usr/bin/env bash
# Issue 14's benchmark: terminated HTTP requests per second and proxy CPU per request on loopback, peer mTLS in front
# of a local mTLS backend, three terminators side by side in the same run:
#   gateway  the peering gateway: GatewayListener + PeeringTerminator (Kestrel in process + YARP), SPIFFE validation
#            against the peer's bundle, the discovery chain's rule, X-Forwarded-Client-Cert, new mTLS to the backend
#   yarp     "YARP alone": Kestrel HTTPS on its own socket (client certificate required, chained to the peer CA) + YARP
#            over mTLS to the backend; no MeshGateway code
#   nginx    http proxy: ssl_verify_client on (peer CA), proxy_pass https:// with proxy_ssl_certificate (the gateway's
#            leaf), proxy_ssl_verify against the local CA, keep-alive upstream, an X-Forwarded-Client-Cert with the
#            fields Consul's gateway sets (By, Hash, Subject, URI, Cert, Chain) from $ssl_client_*, so the backend gets
#            as many header bytes from every row that sets it
# Same backend (benchmarks/PeeringBench `backend`: Kestrel, mTLS, a fixed body), same load client (PeeringBench `load`:
# HTTP/1.1 keep-alive presenting the peer's client certificate, which wrk and h2load cannot), same duration; rows
# interleaved over rounds; the table shows medians, spread and ratios to nginx and to yarp.
#
#   bash eng/bench-peering.sh --quick        # 1 round x 4 s: a smoke run
#   bash eng/bench-peering.sh                # 3 rounds x 10 s, 16 connections
#   bash eng/bench-peering.sh --check-only   # start everything, run the checks, stop
# Results go to .bench-results/peering-<stamp>/ (ignored by git). Every process started here is stopped by PID on exit.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

DURATION=${DURATION:-10}          # measured seconds per run
WARMUP=${WARMUP:-2}               # unmeasured seconds per run on the same connections (after the handshakes)
START_WARMUP=${START_WARMUP:-15}  # unmeasured load through each row once before round 1 (the JIT's tier-up)
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
ROWS=${ROWS:-"gateway yarp nginx"}
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}
BODY_BYTES=${BODY_BYTES:-1024}
BASE_PORT=${BASE_PORT:-19540}     # backend, then gateway +1, yarp +2, nginx +3
QUIET_PCT=${QUIET_PCT:-15}        # before each run wait until the machine is below this busy % ...
QUIET_WAIT=${QUIET_WAIT:-20}      # ... for at most this many seconds
# The summary drops runs with more foreign CPU % than this when the same row has a cleaner round. Off by default
# (100): on a shared machine it dropped nginx's two busy rounds and kept its one quiet round while the other rows had
# no quiet round, which favours one row (2026-12-06 21:39).
FOREIGN_MAX=${FOREIGN_MAX:-100}
# Environment of each .NET process. The gateway row runs with the runtime setting docs/data-plane.md prescribes for a
# dedicated gateway process (and eng/bench-peers.sh uses): socket continuations inline on the sockets engine's threads.
# Measured here (docs/benchmarks.md, issue 14): the gateway's CPU per request ~100-118 -> ~65-85 us; YARP alone got
# no better with it (~90 -> ~115 us), so its row runs stock. With inline completions the runtime starts one sockets
# engine thread per core; one (as YARP alone has: stock, the runtime starts one per 30 cores) cut the gateway's CPU
# per request ~82 -> ~63-67 us at the same requests/s (2026-12-06 23:29-23:37, alternating runs). Set GATEWAY_ENV=
# (empty) for the stock gateway.
GATEWAY_ENV=${GATEWAY_ENV-DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT=1}
YARP_ENV=${YARP_ENV-}
BACKEND_ENV=${BACKEND_ENV-}
RESULTS_ROOT=${RESULTS_ROOT:-$root/.bench-results}
KEEP_RUN=0
CHECK_ONLY=0
REPORT_DIR=""
ORIG_ARGS=("$@")

usage() {
  sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
  cat <<EOF

Options (environment variables of the same name work too; GATEWAY_ENV, YARP_ENV and BACKEND_ENV set the
environment of those processes, default GATEWAY_ENV="DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT=1", the others empty;
GATEWAY_BIN runs the gateway row from another PeeringBench build, e.g. a Native AOT publish):
  --duration S        measured seconds per run (default $DURATION)
  --warmup S          unmeasured seconds per run before it (default $WARMUP)
  --start-warmup S    unmeasured seconds of load through each row once, before round 1 (default $START_WARMUP):
                      the .NET rows reach steady state (tiered JIT, dynamic PGO) only after some seconds of load
  --rounds N          interleaved rounds (default $ROUNDS)
  --connections N     concurrent keep-alive connections (default $CONNECTIONS)
  --rows 'LIST'       rows among gateway yarp nginx (default "$ROWS")
  --nginx-workers N   nginx worker_processes (default: nproc = $NGINX_WORKERS)
  --body-bytes N      response body size (default $BODY_BYTES)
  --base-port P       first of 4 loopback ports (default $BASE_PORT)
  --results DIR       where result folders go (default .bench-results)
  --quick             --duration 4 --warmup 1 --rounds 1 --start-warmup 5
  --check-only        start everything, run the checks, stop
  --keep              keep the run directory (configs, certificates, logs)
  --report DIR        only rebuild summary.tsv and table.txt of a results folder (FOREIGN_MAX applies)
EOF
}

while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --start-warmup) START_WARMUP=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --rows) ROWS=$2; shift ;;
    --nginx-workers) NGINX_WORKERS=$2; shift ;;
    --body-bytes) BODY_BYTES=$2; shift ;;
    --base-port) BASE_PORT=$2; shift ;;
    --results) RESULTS_ROOT=$2; shift ;;
    --quick) DURATION=4 WARMUP=1 ROUNDS=1 START_WARMUP=5 ;;
    --check-only) CHECK_ONLY=1 ;;
    --keep) KEEP_RUN=1 ;;
    --report) REPORT_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for v in DURATION ROUNDS CONNECTIONS NGINX_WORKERS BODY_BYTES BASE_PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "--${v,,} must be a positive integer, not '${!v}'" >&2; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ && $START_WARMUP =~ ^[0-9]+$ ]] || { echo "--warmup and --start-warmup must be non-negative integers" >&2; exit 2; }

declare -A PORT=([backend]=$BASE_PORT [gateway]=$((BASE_PORT + 1)) [yarp]=$((BASE_PORT + 2)) [nginx]=$((BASE_PORT + 3)))
for row in $ROWS; do [[ $row == gateway || $row == yarp || $row == nginx ]] || { echo "unknown row: $row" >&2; exit 2; }; done
SNI="web.default.default.peer-b.external.11111111-2222-3333-4444-555555555555.consul"
GATEWAY_SPIFFE="spiffe://11111111-2222-3333-4444-555555555555.consul/gateway/mesh/dc/dc1"
PEER_SPIFFE="spiffe://22222222-3333-4444-5555-666666666666.consul/ns/default/dc/dc2/svc/frontend"  # the load client's URI SAN
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ tools --
prepare_tools() {
  if ! command -v nginx >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y nginx curl
    # The package may start its own service on :80; stop it by the PID in its pid file.
    if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then $sudo kill "$(cat /run/nginx.pid)" || true; fi
  fi
  for t in nginx curl ss timeout awk dotnet; do command -v "$t" >/dev/null || die "missing tool: $t"; done

  # A published Release build, not `dotnet run`: the SDK's processes would count toward the servers' CPU.
  rid=linux-$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
  publish_dir=$root/.tools/peeringbench
  log "publishing benchmarks/PeeringBench to $publish_dir"
  dotnet publish benchmarks/PeeringBench -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true -o "$publish_dir" --nologo -v quiet
  BIN=$publish_dir/PeeringBench
  [ -x "$BIN" ] || die "publish did not produce $BIN"
}

# ----------------------------------------------------------- process care --
STARTED=()
declare -A PID_OF=()
CLIENT_PID=""
RUN=""

tree_pids() {  # a process and its descendants
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      if (!(root in parent)) exit
      keep[root] = 1; print root
      do { changed = 0
           for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; changed = 1 }
      } while (changed)
    }'
}

is_running() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [[ ${s%% *} != Z ]]; }

kill_tree() {  # TERM a process tree, KILL what is left after 5 s
  local root=$1 pids alive p i
  pids=$(tree_pids "$root")
  [[ -z $pids ]] && { wait "$root" 2>/dev/null || true; return 0; }
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive=""
    for p in $pids; do is_running "$p" && alive+=" $p"; done
    [[ -z $alive ]] && break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  [[ -n $alive ]] && kill -KILL $alive 2>/dev/null
  wait "$root" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  [[ -n $CLIENT_PID ]] && kill_tree "$CLIENT_PID"
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do kill_tree "${STARTED[i]}"; done
  if [[ -n $RUN && -d $RUN ]]; then
    if ((KEEP_RUN)); then log "run directory kept: $RUN"; else rm -rf "$RUN"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_proc() {  # NAME LOGFILE CMD...
  local name=$1 logf=$2
  shift 2
  "$@" >"$logf" 2>&1 &
  STARTED+=("$!")
  PID_OF[$name]=$!
}

port_busy() { [[ -n $(ss -Hltn "sport = :$1") ]]; }

wait_port() {  # PORT PID TIMEOUT_S
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_busy "$1" && return 0
    is_running "$2" || return 1
    sleep 0.1
  done
  return 1
}

machine_ticks() { local _c u n s i w q sq st; read -r _c u n s i w q sq st _ </proc/stat; echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"; }

wait_quiet() {  # wait (bounded) until the machine is calm; prints the last busy %
  local waited=0 a b pct
  while :; do
    a=$(machine_ticks); sleep 1; b=$(machine_ticks)
    pct=$(awk -v a="${a% *}" -v b="${b% *}" -v c="${a#* }" -v d="${b#* }" 'BEGIN { printf "%.0f", (d > c) ? (b - a) / (d - c) * 100 : 0 }')
    ((pct <= QUIET_PCT || waited >= QUIET_WAIT)) && break
    ((waited == 0)) && log "  machine ${pct}% busy before the run (not us): waiting up to ${QUIET_WAIT}s"
    waited=$((waited + 1))
  done
  echo "$pct"
}

# ---------------------------------------------------------------- servers --
start_dotnet() {  # ROW MODE ENV ARGS...
  local row=$1 mode=$2 envs=$3
  shift 3
  mkdir -p "$RUN/$row"
  # shellcheck disable=SC2086
  local bin=$BIN
  # GATEWAY_BIN: another build of PeeringBench for the gateway row only (e.g. a Native AOT publish of it).
  if [ "$row" = gateway ] && [ -n "${GATEWAY_BIN:-}" ]; then bin=$GATEWAY_BIN; fi
  start_proc "$row" "$RUN/$row/stdout.log" env $envs "$bin" "$mode" --listen "127.0.0.1:${PORT[$row]}" --certs "$RUN/pki" "$@"
  wait_port "${PORT[$row]}" "${PID_OF[$row]}" 60 || die "$row did not listen on 127.0.0.1:${PORT[$row]}: $(tail -5 "$RUN/$row/stdout.log")"
}

start_nginx() {
  local d=$RUN/nginx user_line="# (not root: no user switch)"
  mkdir -p "$d/tmp"
  [[ $(id -u) == 0 ]] && user_line="user nobody nogroup;"
  cat >"$d/nginx.conf" <<EOF
# nginx as a TLS-terminating HTTP proxy for eng/bench-peering.sh (rendered by it).
worker_processes $NGINX_WORKERS;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
$user_line

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

    upstream backend {
        server 127.0.0.1:${PORT[backend]};
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:${PORT[nginx]} ssl backlog=4096;
        ssl_protocols TLSv1.2 TLSv1.3;
        # The peer's mTLS: the gateway's leaf, a client certificate required and chained to the peer's CA.
        ssl_certificate $RUN/pki/gateway.crt;
        ssl_certificate_key $RUN/pki/gateway.key;
        ssl_client_certificate $RUN/pki/peer-ca.crt;
        ssl_verify_client on;
        ssl_verify_depth 2;
        keepalive_requests 1000000;
        keepalive_timeout 75s;

        location / {
            proxy_pass https://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # Consul's XFCC fields (SANITIZE_SET: the client's value replaced; Subject, URI, Cert, Chain as
            # PeerCertificates.FormatForwardedClientCert writes them): the client's leaf is the whole chain it presents,
            # so Chain repeats Cert, as Envoy's does; URI is the load client's one SAN (nginx has no variable for it).
            # Before 2026-12-07 11:00 this row sent only Cert and Subject (~1.2 KB less to the backend per request).
            proxy_set_header X-Forwarded-Client-Cert "By=$GATEWAY_SPIFFE;Hash=\$ssl_client_fingerprint;Subject=\"\$ssl_client_s_dn\";URI=$PEER_SPIFFE;Cert=\"\$ssl_client_escaped_cert\";Chain=\"\$ssl_client_escaped_cert\"";
            # New mTLS to the backend with the gateway's leaf, the backend checked against the local CA.
            proxy_ssl_certificate $RUN/pki/gateway.crt;
            proxy_ssl_certificate_key $RUN/pki/gateway.key;
            proxy_ssl_trusted_certificate $RUN/pki/local-ca.crt;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name backend.peering-bench.test;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
        }
    }
}
EOF
  nginx -q -t -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" || die "nginx config test failed"
  start_proc nginx "$d/stdout.log" nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf"
  wait_port "${PORT[nginx]}" "${PID_OF[nginx]}" 10 || die "nginx did not start: $(tail -5 "$d/error.log")"
}

# ----------------------------------------------------------------- checks --
# curl through each row: the peer's certificate gets the backend's body; no certificate, and a certificate of another
# trust domain (the gateway's own leaf), are refused at the handshake. curl cannot check a SPIFFE ID (-k); the load
# client's 1-second probe afterwards checks the server's chain against the local CA.
check_row() {
  local row=$1 port=${PORT[$1]} fails=0 got
  local cu=(curl -k -sS --http1.1 --max-time 5 --resolve "$SNI:$port:127.0.0.1" -o /dev/null -w '%{http_code} %{size_download}')
  got=$("${cu[@]}" --cert "$RUN/pki/client.crt" --key "$RUN/pki/client.key" "https://$SNI:$port/" 2>/dev/null) || true
  if [[ $got == "200 $BODY_BYTES" ]]; then echo "  ok   $row: peer certificate -> 200, $BODY_BYTES bytes"; else echo "  FAIL $row: peer certificate -> '$got'"; fails=$((fails + 1)); fi
  got=$("${cu[@]}" "https://$SNI:$port/" 2>/dev/null) || true
  if [[ $got == 200* ]]; then echo "  FAIL $row: no client certificate was NOT refused"; fails=$((fails + 1)); else echo "  ok   $row: no client certificate refused ($got)"; fi
  got=$("${cu[@]}" --cert "$RUN/pki/gateway.crt" --key "$RUN/pki/gateway.key" "https://$SNI:$port/" 2>/dev/null) || true
  if [[ $got == 200* ]]; then echo "  FAIL $row: a certificate of another trust domain was NOT refused"; fails=$((fails + 1)); else echo "  ok   $row: another trust domain refused ($got)"; fi
  got=$(timeout -k 5 30 "$BIN" load --target "127.0.0.1:$port" --certs "$RUN/pki" --connections 2 --warmup-s 1 --duration-s 2 2>&1 | grep '^PEERING_RESULT') || true
  if [[ $got =~ requests=([1-9][0-9]*).*err_connect=0\ err_read=0\ err_status=0\ err_timeout=0 ]]; then
    echo "  ok   $row: load client probe, ${BASH_REMATCH[1]} requests, no error"
  else echo "  FAIL $row: load client probe: '$got'"; fails=$((fails + 1)); fi
  return "$fails"
}

# ------------------------------------------------------------------- load --
RAW_HEADER="round	row	conns	requests	duration_us	err_connect	err_read	err_status	err_timeout	lat_p50_us	lat_p90_us	lat_p99_us	lat_p999_us	lat_max_us	proxy_ticks	backend_ticks	client_cpu_us	machine_busy_ticks	machine_total_ticks	foreign_pct	pre_busy_pct"

measure() {  # ROUND ROW
  local round=$1 row=$2 out=$RESDIR/runs/r$1-$2.txt pre pids res
  pre=$(wait_quiet)
  pids=$(tree_pids "${PID_OF[$row]}" | paste -sd, -)
  timeout -k 5 $((WARMUP + DURATION + 60)) "$BIN" load --target "127.0.0.1:${PORT[$row]}" --certs "$RUN/pki" \
    --connections "$CONNECTIONS" --warmup-s "$WARMUP" --duration-s "$DURATION" \
    --proxy-pids "$pids" --backend-pids "${PID_OF[backend]}" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || true
  CLIENT_PID=""
  is_running "${PID_OF[$row]}" || die "$row died during round $round (see $RUN/$row)"
  res=$(grep '^PEERING_RESULT' "$out" | head -1) || true
  [[ -n $res ]] || { log "  $row: the load client produced no result (see $out)"; return 0; }
  declare -A v=()
  local kv
  for kv in ${res#PEERING_RESULT }; do v[${kv%%=*}]=${kv#*=}; done
  # CPU that was neither the proxy, the backend nor the client (clamped at 0: counters are sampled a moment apart)
  local foreign
  foreign=$(awk -v b="${v[machine_busy_ticks]}" -v t="${v[machine_total_ticks]}" -v p="${v[proxy_ticks]}" -v k="${v[backend_ticks]}" \
    -v c="${v[client_cpu_us]}" -v hz="$CLK_TCK" 'BEGIN { f = (t > 0) ? (b - p - k - c / 1e6 * hz) / t * 100 : 0; printf "%.1f", (f < 0) ? 0 : f }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$round" "$row" "$CONNECTIONS" "${v[requests]}" "${v[duration_us]}" "${v[err_connect]}" "${v[err_read]}" "${v[err_status]}" \
    "${v[err_timeout]}" "${v[lat_p50_us]}" "${v[lat_p90_us]}" "${v[lat_p99_us]}" "${v[lat_p999_us]}" "${v[lat_max_us]}" \
    "${v[proxy_ticks]}" "${v[backend_ticks]}" "${v[client_cpu_us]}" "${v[machine_busy_ticks]}" "${v[machine_total_ticks]}" "$foreign" "$pre" >>"$RESDIR/raw.tsv"
  log "  $(awk -v row="$row" -v r="${v[requests]}" -v d="${v[duration_us]}" -v p="${v[proxy_ticks]}" -v hz="$CLK_TCK" -v p99="${v[lat_p99_us]}" \
    -v e="$((v[err_connect] + v[err_read] + v[err_status] + v[err_timeout]))" -v f="$foreign" \
    'BEGIN { printf "%-8s %8.0f req/s  proxy %6.1f us CPU/req  p99 %6d us  errors %d  foreign CPU %s%%", row, r / d * 1e6, (r > 0) ? p / hz * 1e6 / r : 0, p99, e, f }')"
}

# ---------------------------------------------------------------- summary --
# One line per (figure, row): median over rounds, min, max, spread = (max - min) / median, ratios of medians to nginx
# and to yarp. Runs with more foreign CPU than FOREIGN_MAX are dropped where the same row has a cleaner round.
summarize() {
  awk -F'\t' -v OFS='\t' -v tck="$CLK_TCK" -v rows="$ROWS" -v fmax="$FOREIGN_MAX" '
    function add(row, fig, v) { k = row SUBSEP fig; n[k]++; val[k, n[k]] = v; seen[fig] = 1 }
    FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    NR == FNR { if ($c["foreign_pct"] + 0 <= fmax + 0) clean[$c["row"]]++; next }
    {
      row = $c["row"]; req = $c["requests"]; dur = $c["duration_us"] / 1e6
      add(row, "foreign_cpu_pct", $c["foreign_pct"])
      if ($c["foreign_pct"] + 0 > fmax + 0 && clean[row] > 0) { dropped[row]++; next }
      if (dur <= 0 || req <= 0) next
      add(row, "req/s", req / dur)
      add(row, "proxy_cpu_us/req", $c["proxy_ticks"] / tck * 1e6 / req)
      add(row, "proxy_cpu_pct", $c["proxy_ticks"] / tck / dur * 100)
      add(row, "backend_cpu_us/req", $c["backend_ticks"] / tck * 1e6 / req)
      add(row, "client_cpu_us/req", $c["client_cpu_us"] / req)
      add(row, "p50_us", $c["lat_p50_us"]); add(row, "p99_us", $c["lat_p99_us"])
      errs[row] += $c["err_connect"] + $c["err_read"] + $c["err_status"] + $c["err_timeout"]; reqs[row] += req
    }
    END {
      split("req/s proxy_cpu_us/req proxy_cpu_pct p50_us p99_us backend_cpu_us/req client_cpu_us/req foreign_cpu_pct", F, " ")
      nr = split(rows, R, " ")
      print "figure", "row", "n", "median", "min", "max", "spread_pct", "ratio_to_nginx", "ratio_to_yarp", "errors", "dropped_runs"
      for (f = 1; f in F; f++) {
        fig = F[f]; if (!(fig in seen)) continue
        delete med
        for (i = 1; i <= nr; i++) {
          k = R[i] SUBSEP fig; m = n[k]; if (!m) continue
          for (a = 1; a <= m; a++) s[a] = val[k, a]
          for (a = 2; a <= m; a++) { x = s[a]; b = a - 1; while (b >= 1 && s[b] > x) { s[b + 1] = s[b]; b-- } s[b + 1] = x }
          med[R[i]] = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2; lo[R[i]] = s[1]; hi[R[i]] = s[m]; cnt[R[i]] = m
        }
        for (i = 1; i <= nr; i++) {
          r = R[i]; if (!(r in med)) continue
          sp = (med[r] > 0) ? (hi[r] - lo[r]) / med[r] * 100 : 0
          rn = (("nginx" in med) && med["nginx"] > 0) ? sprintf("%.3f", med[r] / med["nginx"]) : "-"
          ry = (("yarp" in med) && med["yarp"] > 0) ? sprintf("%.3f", med[r] / med["yarp"]) : "-"
          printf "%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%d\t%d\n", fig, r, cnt[r], med[r], lo[r], hi[r], sp, rn, ry, errs[r], dropped[r]
        }
      }
    }' "$RESDIR/raw.tsv" "$RESDIR/raw.tsv"
}

print_table() {
  awk -F'\t' '
    NR == 1 { next }
    { printf "%-20s %-8s %3s %10s %10s %10s %7s%% %8s %8s %7s %4s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }
    BEGIN { printf "%-20s %-8s %3s %10s %10s %10s %8s %8s %8s %7s %4s\n", "figure", "row", "n", "median", "min", "max", "spread", "/nginx", "/yarp", "errors", "drop" }' "$1"
  cat <<EOF

req/s: requests completed per second in the measured window (higher is better). proxy_cpu_us/req: the proxy
process tree's CPU time (utime+stime from /proc/PID/stat) per request (lower is better); proxy_cpu_pct: of one CPU.
p50/p99: request latency from the load client. backend/client CPU per request: the shared costs, the same work in
every row. foreign_cpu_pct: share of all CPUs used by neither proxy, backend nor client during a run (other jobs).
/nginx, /yarp: median over the row's median. spread = (max - min) / median over the rounds.
EOF
}

# ------------------------------------------------------------------- main --
if [[ -n $REPORT_DIR ]]; then
  RESDIR=${REPORT_DIR%/}
  [[ -f $RESDIR/raw.tsv ]] || die "$RESDIR has no raw.tsv"
  ROWS=$(awk -F'\t' 'NR > 1 && !seen[$2]++ { printf "%s%s", sep, $2; sep = " " }' "$RESDIR/raw.tsv")
  summarize >"$RESDIR/summary.tsv"
  { echo "bench-peering.sh (report rebuilt, foreign-max=$FOREIGN_MAX)  $(grep -m1 '^command:' "$RESDIR/settings.txt" 2>/dev/null)"; print_table "$RESDIR/summary.tsv"; } | tee "$RESDIR/table.txt"
  exit 0
fi
prepare_tools
for p in "${PORT[backend]}" $(for row in $ROWS; do echo "${PORT[$row]}"; done); do
  port_busy "$p" && die "port 127.0.0.1:$p is already in use (try --base-port)"
done
RESDIR=$RESULTS_ROOT/peering-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESDIR/runs"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/peering-bench.XXXXXX")
chmod 755 "$RUN"
{
  echo "command: $0 ${ORIG_ARGS[*]:-}"
  for v in DURATION WARMUP START_WARMUP ROUNDS CONNECTIONS ROWS NGINX_WORKERS BODY_BYTES BASE_PORT QUIET_PCT QUIET_WAIT FOREIGN_MAX GATEWAY_ENV YARP_ENV BACKEND_ENV; do printf '%s=%q\n' "$v" "${!v}"; done
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -sr)   cpus: $NCPU   cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "uptime: $(uptime)"
  echo "nginx: $(nginx -v 2>&1)   openssl: $(openssl version 2>/dev/null)"
  echo "dotnet: $(dotnet --version)   runtime: $(dotnet --list-runtimes | grep Microsoft.AspNetCore.App | tail -1)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
} >"$RESDIR/settings.txt"
log "results: $RESDIR   run dir: $RUN   $(uptime | sed 's/.*load/load/')"

m0=$(machine_ticks); sleep 2; m1=$(machine_ticks)
base_busy=$(awk -v a="${m0% *}" -v b="${m1% *}" -v c="${m0#* }" -v d="${m1#* }" 'BEGIN { printf "%.1f", (b - a) / (d - c) * 100 }')
log "machine busy before start: ${base_busy}% of $NCPU CPUs"
echo "baseline_busy_pct=$base_busy" >>"$RESDIR/settings.txt"

"$BIN" certs --out "$RUN/pki" >/dev/null
chmod 755 "$RUN/pki"
chmod 644 "$RUN/pki"/*
mkdir -p "$RUN/backend"
# shellcheck disable=SC2086
start_proc backend "$RUN/backend/stdout.log" env $BACKEND_ENV "$BIN" backend --listen "127.0.0.1:${PORT[backend]}" --certs "$RUN/pki" --body-bytes "$BODY_BYTES"
wait_port "${PORT[backend]}" "${PID_OF[backend]}" 60 || die "backend did not start: $(tail -5 "$RUN/backend/stdout.log")"
for row in $ROWS; do
  case $row in
    gateway) start_dotnet gateway gateway "$GATEWAY_ENV" --backend "127.0.0.1:${PORT[backend]}" ;;
    yarp) start_dotnet yarp yarp "$YARP_ENV" --backend "127.0.0.1:${PORT[backend]}" ;;
    nginx) start_nginx ;;
  esac
done
log "started: backend pid ${PID_OF[backend]}$(for row in $ROWS; do printf ', %s pid %s' "$row" "${PID_OF[$row]}"; done)"
mkdir -p "$RESDIR/config"
[[ -f $RUN/nginx/nginx.conf ]] && sed "s#$RUN#\$RUN#g" "$RUN/nginx/nginx.conf" >"$RESDIR/config/nginx.conf"

log "checks"
fails=0
: >"$RESDIR/checks.txt"
for row in $ROWS; do check_row "$row" >>"$RESDIR/checks.txt" || fails=$((fails + 1)); done
sed 's/^/  /' "$RESDIR/checks.txt" >&2
((fails == 0)) || die "$fails row(s) failed their checks (see above)"
((CHECK_ONLY)) && { log "check-only: done"; exit 0; }

if ((START_WARMUP > 0)); then
  # Measured in the first run of this script (2026-12-06): without it the .NET rows' first round cost ~1.6-2x the CPU
  # per request of their later rounds (tier-0 code under load), while nginx was the same from the start.
  log "start warm-up: ${START_WARMUP}s of load through each row"
  for row in $ROWS; do
    timeout -k 5 $((START_WARMUP + 60)) "$BIN" load --target "127.0.0.1:${PORT[$row]}" --certs "$RUN/pki" --connections "$CONNECTIONS" \
      --warmup-s 0 --duration-s "$START_WARMUP" >"$RESDIR/runs/warmup-$row.txt" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || true
    CLIENT_PID=""
  done
fi

printf '%s\n' "$RAW_HEADER" >"$RESDIR/raw.tsv"
read -r -a rowlist <<<"$ROWS"
nrows=${#rowlist[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  # rows alternate: rotate the order each round and reverse it every other round (as ../shared/bench/peers.sh)
  order=()
  for ((i = 0; i < nrows; i++)); do order+=("${rowlist[(i + r - 1) % nrows]}"); done
  if ((r % 2 == 0)); then rev=(); for ((i = nrows - 1; i >= 0; i--)); do rev+=("${order[i]}"); done; order=("${rev[@]}"); fi
  log "round $r/$ROUNDS, order: ${order[*]}"
  for row in "${order[@]}"; do measure "$r" "$row"; done
done

summarize >"$RESDIR/summary.tsv"
{
  echo "bench-peering.sh  $(date -u +%Y-%m-%dT%H:%M:%SZ)  rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s start-warmup=${START_WARMUP}s connections=$CONNECTIONS body=${BODY_BYTES}B nginx-workers=$NGINX_WORKERS cpus=$NCPU baseline-busy=${base_busy}%"
  print_table "$RESDIR/summary.tsv"
} | tee "$RESDIR/table.txt"
log "raw: $RESDIR/raw.tsv  summary: $RESDIR/summary.tsv  table: $RESDIR/table.txt"
