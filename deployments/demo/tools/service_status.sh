#!/usr/bin/env bash
# post_deploy hook: the service's process is alive.
set -euo pipefail
pidfile=".out/${APP_ENV:-local}/run/$1.pid"
pid=$(cat "$pidfile")
kill -0 "$pid" && echo "$1 running (pid $pid)"
