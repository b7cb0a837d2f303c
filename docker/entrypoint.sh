#!/bin/sh
# Entrypoint for the Ticketing image (web, Celery worker and beat).
set -e

# Only the web server migrates (and, if asked, seeds demo data). Worker and beat run
# the same image but wait for web to be healthy, so there is exactly one migrator.
# MIGRATE_ON_START defaults to 0 here: deployments with several web replicas should
# migrate as a separate release step; compose.yaml sets it to 1 for its single web.
case "$1" in
  granian | */granian)
    if [ "${MIGRATE_ON_START:-0}" = "1" ]; then
      python manage.py migrate --noinput
    fi
    if [ "${SEED_DEMO:-0}" = "1" ]; then
      python manage.py seed_demo
    fi
    ;;
esac

exec "$@"
