#!/bin/sh
# One-shot (temporalio/admin-tools): create or upgrade Temporal's schemas in PostgreSQL, the job
# the deprecated auto-setup image used to do on every start. Idempotent: `setup-schema -v 0.0`
# leaves a versioned schema alone and `update-schema` applies only what is missing.
# The databases themselves are created by deploy/postgres/init-databases.sql; the password
# comes from SQL_PASSWORD (temporal-sql-tool reads it from the environment).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"
SCHEMAS=/etc/temporal/schema/postgresql/v12

tries=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "PostgreSQL $POSTGRES_SEEDS:$PORT not reachable" >&2; exit 1; }
  sleep 2
done

migrate() { # database, versioned schema directory
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" \
    --db "$1" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" \
    --db "$1" update-schema -d "$2"
  echo "schema of $1 is current"
}

migrate temporal "$SCHEMAS/temporal/versioned"
migrate temporal_visibility "$SCHEMAS/visibility/versioned"
