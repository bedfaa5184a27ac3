#!/usr/bin/env bash
# Start Debian's PostgreSQL and a Redis on loopback for benchmarks (and CI), then print the
# environment that points Conduit at them. Usage: eval "$(bash bench/services.sh)"
set -euo pipefail
if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main start >&2 2>/dev/null || service postgresql start >&2
until su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; do sleep 0.2; done
su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN CREATE ROLE conduit LOGIN SUPERUSER PASSWORD 'conduit'; EXCEPTION WHEN duplicate_object THEN NULL; END \\\$\\\$;\"" >&2
su postgres -c "createdb -O conduit conduit" >&2 2>/dev/null || true
redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >&2
until redis-cli -p 6379 ping >/dev/null 2>&1; do sleep 0.1; done
echo "export DATABASE_URL=postgres://conduit:conduit@127.0.0.1:5432/conduit"
echo "export REDIS_URL=redis://127.0.0.1:6379/1"
echo "export CELERY_BROKER_URL=redis://127.0.0.1:6379/0"
