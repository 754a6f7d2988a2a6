#!/usr/bin/env bash
# A local PostgreSQL for the production profile's tests: Debian's server on loopback, a `dagster`
# role and database (Dagster's storage; each lake catalog gets a database of its own, and the tests
# create a read-only role, hence CREATEDB and CREATEROLE). Idempotent; needs root (apt, runuser).
# Prints exactly one line on stdout, the URL for PLATFORM_TEST_POSTGRES_URL; everything the tools
# say on the way (apt, "Removed stale pid file.", ...) goes to stderr so callers can use $(...).
set -euo pipefail
exec 3>&1 1>&2
if ! command -v pg_lsclusters >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1)
if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$cluster" start 3>&-  # the server must not hold our stdout open
fi
as_postgres() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'dagster'")" != "1" ]; then
    as_postgres -c "CREATE ROLE dagster LOGIN CREATEDB PASSWORD 'dagster'"
fi
as_postgres -c "ALTER ROLE dagster CREATEDB CREATEROLE"
if [ "$(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = 'dagster'")" != "1" ]; then
    as_postgres -c "CREATE DATABASE dagster OWNER dagster"
fi
echo "postgresql://dagster:dagster@127.0.0.1:${port}/dagster" >&3
