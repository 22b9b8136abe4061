#!/usr/bin/env bash
# Make sure PostgreSQL, Redis, Mosquitto and RabbitMQ are reachable on 127.0.0.1; start them when
# they are down, install them from Debian packages when they are absent. Idempotent; safe to run
# often. RabbitMQ is the production Celery broker for several machines; its test runs a worker on it.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

need_apt_update=1
apt_install() {
  if [ "$(id -u)" != "0" ]; then
    log "cannot install $* without root; install it and rerun"; return 1
  fi
  if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2 tries=${3:-50}
  for _ in $(seq 1 "$tries"); do port_open "$port" && return 0; sleep 0.2; done
  log "$name did not come up on port $port"; return 1
}

# PostgreSQL ---------------------------------------------------------------------------
if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"; apt_install postgresql
  fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 5432 PostgreSQL
fi
log "PostgreSQL ok"

# Redis --------------------------------------------------------------------------------
if ! port_open 6379; then
  command -v redis-server >/dev/null || { log "installing Redis"; apt_install redis-server; }
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis
fi
log "Redis ok"

# Mosquitto ----------------------------------------------------------------------------
if ! port_open 1883; then
  command -v mosquitto >/dev/null || { log "installing Mosquitto"; apt_install mosquitto mosquitto-clients; }
  log "starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_port 1883 Mosquitto
fi
log "Mosquitto ok"

# RabbitMQ -----------------------------------------------------------------------------
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || { log "installing RabbitMQ"; apt_install rabbitmq-server; }
  log "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672 RabbitMQ 300
fi
log "RabbitMQ ok"
