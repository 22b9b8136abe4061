#!/usr/bin/env bash
# One-time (and idempotent) set-up shared by `make run` and `make test`:
# virtualenv + Python packages, npm packages, services, database, static files.
# Usage: scripts/setup.sh [--browser]   (--browser also makes sure Chromium is installed)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# Python -------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating virtualenv with $PY"; "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi

# npm (contracts toolchain + front-end libraries), exact versions from package-lock -----
for dir in . contracts; do
  [ -f "$dir/package.json" ] || continue
  lock="$dir/package-lock.json"
  stamp="$dir/node_modules/.lock.sha256"
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing npm packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
done
if [ -f package.json ]; then npm run --silent vendor; fi

# Browser for end-to-end tests (Playwright drives Debian's Chromium) -------------------
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium from Debian packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Services and database ----------------------------------------------------------------
bash scripts/services.sh
DB_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/energysphere}
DB_NAME=${DB_URL##*/}; DB_NAME=${DB_NAME%%\?*}
ADMIN_URL=${DB_URL%/*}/postgres
if ! psql "$ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
  log "creating database $DB_NAME"; psql "$ADMIN_URL" -qc "CREATE DATABASE \"$DB_NAME\""
fi
log "ready"
