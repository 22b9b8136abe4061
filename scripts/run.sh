#!/usr/bin/env bash
# `make run`: migrate, load the demo cooperative, start the local chain and every process.
# Ctrl-C stops everything (honcho forwards the signal to each process).
#
# Ports and state (environment, or .env for the Django side): PORT (web, 8000), ANVIL_PORT
# (8545), OCPP_PORT (9016), OPENADR_VTN_PORT (9017), ES_VAR_DIR (state directory: Procfile, beat
# schedule, anvil state, logs; default var). Two stacks on one machine need different values of
# all of them, and their own DATABASE_URL, CACHE_KEY_PREFIX, CHANNEL_LAYER_PREFIX and
# MQTT_TOPIC_PREFIX and CELERY_BROKER_KEY_PREFIX (README, "Two stacks on one machine").
# DEMO_HISTORY_DAYS shortens the demo's reading history (default 28 days; tests use less).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
PY=.venv/bin/python
VAR=${ES_VAR_DIR:-var}
export ANVIL_STATE_PATH=${ANVIL_STATE_PATH:-$VAR/anvil/state.json}
WEB_PORT=${PORT:-8000}
mkdir -p "$VAR"

$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput -v0
# One Django start-up lists every command (each `manage.py help <name>` would cost another).
COMMANDS=" $($PY manage.py help --commands | tr '\n' ' ') "
has_command() { [[ "$COMMANDS" == *" $1 "* ]]; }

procs=$VAR/Procfile
: > "$procs"
HOOKS_PID=
stop_all() {
  if [ -n "$HOOKS_PID" ]; then kill -- "$HOOKS_PID" 2>/dev/null || true; fi
  if [ -n "${ANVIL_STARTED:-}" ] && [ -f "$VAR/anvil/anvil.pid" ]; then
    # anvil runs in its own session (process group): stop the npm wrapper and the binary.
    kill -- "-$(cat "$VAR/anvil/anvil.pid")" 2>/dev/null || true
    rm -f "$VAR/anvil/anvil.pid"
  fi
}
trap stop_all EXIT
trap "exit 130" INT TERM
if has_command chain_node; then
  # The local anvil node keeps its state in $VAR so deployments survive restarts.
  out=$($PY manage.py chain_node --ensure)
  echo "$out"
  case "$out" in *started*) ANVIL_STARTED=1 ;; esac
  has_command chain_deploy && $PY manage.py chain_deploy
fi
# Base demo (members, topology, meters, 28 days of history) before serving. The history stops one
# interval short: the meter simulator publishes the latest complete interval live, so the ingest
# page shows readings arriving from the first minute.
$PY manage.py demo_cooperative --no-hooks --live-intervals 1 ${DEMO_HISTORY_DAYS:+--history-days "$DEMO_HISTORY_DAYS"}
# The market of the last 24 hours before serving too: it is the first thing a member looks at.
$PY manage.py demo_cooperative --hooks-only --hooks market
# The other demo extras (grid devices, certificates, invoices) load in the background, started now
# so they overlap the rest of the start-up; until they are done every portal page says "Preparing
# the demo…". Reward rules live on chain and only the multisig may set them: sync them after.
(
  $PY manage.py demo_cooperative --hooks-only --hooks grid,incentives,billing
  if has_command chain_multisig; then $PY manage.py chain_multisig reward-rules-sync; fi
  echo "demo extras loaded"
) > "$VAR/demo-hooks.log" 2>&1 &
HOOKS_PID=$!

# The device-facing processes (simulator, OCPP, OpenADR) would log every message at INFO: ~2
# messages a second that honcho relays, a measurable share of the idle CPU (bench/RESULTS.md,
# idle). They log warnings and errors; DEVICE_LOG_LEVEL=INFO shows every message again.
DEVICE_LOG_LEVEL=${DEVICE_LOG_LEVEL:-WARNING}

# The production ASGI server (gunicorn + uvicorn workers, config/gunicorn.py): pages, static files
# (WhiteNoise) and WebSockets. Each process has its own database pool and a name in
# pg_stat_activity; the single-threaded ones need at most 2 connections (README, Deployment).
echo "web: DB_APPLICATION_NAME=es-web .venv/bin/gunicorn -c config/gunicorn.py --bind 127.0.0.1:$WEB_PORT --control-socket $VAR/gunicorn.ctl" >> "$procs"
echo "worker: DB_APPLICATION_NAME=es-worker DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config worker -n main-$WEB_PORT@%h -Q default,ingest,market,chain,reports -c 2 -l info" >> "$procs"
# Forecast backtests take tens of seconds per series: their own worker keeps ingest and chain moving.
echo "gridworker: DB_APPLICATION_NAME=es-gridworker DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config worker -n grid-$WEB_PORT@%h -Q grid -c 1 -l info" >> "$procs"
echo "beat: DB_APPLICATION_NAME=es-beat DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config beat -l info -s $VAR/celerybeat-schedule" >> "$procs"
has_command mqtt_bridge && echo "bridge: DB_APPLICATION_NAME=es-bridge DB_POOL_MAX_SIZE=2 $PY manage.py mqtt_bridge --client-id es-bridge-$WEB_PORT" >> "$procs"
has_command grid_command_acks && echo "acks: DB_APPLICATION_NAME=es-acks DB_POOL_MAX_SIZE=2 $PY manage.py grid_command_acks" >> "$procs"
has_command simulate_meters && echo "simulator: LOG_LEVEL=$DEVICE_LOG_LEVEL DB_APPLICATION_NAME=es-simulator DB_POOL_MAX_SIZE=2 $PY manage.py simulate_meters --meters 250 --speed 60 --spread" >> "$procs"
# OCPP central system for the EV chargers, and the demo chargers as OCPP 1.6-J clients: a meter
# value every 60 s counting 15 simulated minutes (each session start re-plans dispatch, so a slower
# pace keeps an idle stack cheap).
has_command ocpp_server && echo "ocpp: LOG_LEVEL=$DEVICE_LOG_LEVEL DB_APPLICATION_NAME=es-ocpp DB_POOL_MAX_SIZE=2 $PY manage.py ocpp_server" >> "$procs"
has_command ocpp_charger_simulator && echo "chargers: LOG_LEVEL=$DEVICE_LOG_LEVEL DB_APPLICATION_NAME=es-chargers DB_POOL_MAX_SIZE=2 $PY manage.py ocpp_charger_simulator --sample-seconds 60 --speed 15" >> "$procs"
# OpenADR 2.0b VTN for demand response, and the demo sites' VENs as openleadr clients.
has_command openadr_vtn && echo "vtn: LOG_LEVEL=$DEVICE_LOG_LEVEL DB_APPLICATION_NAME=es-vtn DB_POOL_MAX_SIZE=2 $PY manage.py openadr_vtn" >> "$procs"
has_command openadr_ven_simulator && echo "vens: LOG_LEVEL=$DEVICE_LOG_LEVEL DB_APPLICATION_NAME=es-vens DB_POOL_MAX_SIZE=2 $PY manage.py openadr_ven_simulator" >> "$procs"

cat <<MSG

EnergySphere is starting on http://127.0.0.1:$WEB_PORT/
Demo logins (password for all: see below):
$($PY manage.py demo_cooperative --print-logins)

OCPP chargers: ws://127.0.0.1:${OCPP_PORT:-9016}/ocpp/<id> (\`manage.py demo_cooperative --print-devices\`)
OpenADR VTN: http://127.0.0.1:${OPENADR_VTN_PORT:-9017}/OpenADR2/Simple/2.0b (same command)
Health: http://127.0.0.1:$WEB_PORT/healthz   Ctrl-C stops everything.
Demo extras are loading in the background ($VAR/demo-hooks.log).
MSG
# honcho would read .env itself and let it override the environment (Django reads .env too, but
# the environment wins there): a stack started with its own DATABASE_URL or prefixes would run
# its processes against .env's. `-e /dev/null`: the processes see exactly this environment.
.venv/bin/honcho -e /dev/null -f "$procs" -d . start
