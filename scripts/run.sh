#!/usr/bin/env bash
# `make run`: migrate, load the demo cooperative, start the local chain and every process.
# Ctrl-C stops everything (honcho forwards the signal to each process).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
PY=.venv/bin/python
mkdir -p var

has_command() { $PY manage.py help "$1" >/dev/null 2>&1; }

$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput -v0

procs=var/Procfile
: > "$procs"
stop_chain() {
  if [ -n "${ANVIL_STARTED:-}" ] && [ -f var/anvil/anvil.pid ]; then
    # anvil runs in its own session (process group): stop the npm wrapper and the binary.
    kill -- "-$(cat var/anvil/anvil.pid)" 2>/dev/null || true
    rm -f var/anvil/anvil.pid
  fi
}
trap stop_chain EXIT
trap "exit 130" INT TERM
if has_command chain_node; then
  # The local anvil node keeps its state in var/ so deployments survive restarts.
  out=$($PY manage.py chain_node --ensure)
  echo "$out"
  case "$out" in *started*) ANVIL_STARTED=1 ;; esac
  has_command chain_deploy && $PY manage.py chain_deploy
fi
# Base demo (members, topology, meters, 28 days of history) before serving; the apps' demo
# extras (tariffs, forecasts, certificates…) load in the background once everything runs.
$PY manage.py demo_cooperative --no-hooks

# The production ASGI server (gunicorn + uvicorn workers, config/gunicorn.py): pages, static files
# (WhiteNoise) and WebSockets. Each process has its own database pool and a name in
# pg_stat_activity; the single-threaded ones need at most 2 connections (README, Deployment).
echo "web: DB_APPLICATION_NAME=es-web .venv/bin/gunicorn -c config/gunicorn.py --bind 127.0.0.1:${PORT:-8000}" >> "$procs"
echo "worker: DB_APPLICATION_NAME=es-worker DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config worker -n main@%h -Q default,ingest,market,chain,reports -c 2 -l info" >> "$procs"
# Forecast backtests take tens of seconds per series: their own worker keeps ingest and chain moving.
echo "gridworker: DB_APPLICATION_NAME=es-gridworker DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config worker -n grid@%h -Q grid -c 1 -l info" >> "$procs"
echo "beat: DB_APPLICATION_NAME=es-beat DB_POOL_MAX_SIZE=2 .venv/bin/celery -A config beat -l info -s var/celerybeat-schedule" >> "$procs"
has_command mqtt_bridge && echo "bridge: DB_APPLICATION_NAME=es-bridge DB_POOL_MAX_SIZE=2 $PY manage.py mqtt_bridge --client-id es-bridge-1" >> "$procs"
has_command grid_command_acks && echo "acks: DB_APPLICATION_NAME=es-acks DB_POOL_MAX_SIZE=2 $PY manage.py grid_command_acks" >> "$procs"
has_command simulate_meters && echo "simulator: DB_APPLICATION_NAME=es-simulator DB_POOL_MAX_SIZE=2 $PY manage.py simulate_meters --meters 250 --speed 60" >> "$procs"
# OCPP central system for the EV chargers, and the demo chargers as OCPP 1.6-J clients.
has_command ocpp_server && echo "ocpp: DB_APPLICATION_NAME=es-ocpp DB_POOL_MAX_SIZE=2 $PY manage.py ocpp_server" >> "$procs"
has_command ocpp_charger_simulator && echo "chargers: DB_APPLICATION_NAME=es-chargers DB_POOL_MAX_SIZE=2 $PY manage.py ocpp_charger_simulator" >> "$procs"
# OpenADR 2.0b VTN for demand response, and the demo sites' VENs as openleadr clients.
has_command openadr_vtn && echo "vtn: DB_APPLICATION_NAME=es-vtn DB_POOL_MAX_SIZE=2 $PY manage.py openadr_vtn" >> "$procs"
has_command openadr_ven_simulator && echo "vens: DB_APPLICATION_NAME=es-vens DB_POOL_MAX_SIZE=2 $PY manage.py openadr_ven_simulator" >> "$procs"

cat <<MSG

EnergySphere is starting on http://127.0.0.1:${PORT:-8000}/
Demo logins (password for all: see below):
$($PY manage.py demo_cooperative --print-logins)

OCPP chargers: ws://127.0.0.1:${OCPP_PORT:-9016}/ocpp/<id> (\`manage.py demo_cooperative --print-devices\`)
OpenADR VTN: http://127.0.0.1:${OPENADR_VTN_PORT:-9017}/OpenADR2/Simple/2.0b (same command)
Health: http://127.0.0.1:${PORT:-8000}/healthz   Ctrl-C stops everything.
MSG
# Reward rules live on chain and only the multisig may set them: sync them after the extras.
(
  $PY manage.py demo_cooperative --hooks-only
  if has_command chain_multisig; then $PY manage.py chain_multisig reward-rules-sync; fi
) > var/demo-hooks.log 2>&1 &
echo "Demo extras are loading in the background (var/demo-hooks.log)."
.venv/bin/honcho -f "$procs" -d . start
