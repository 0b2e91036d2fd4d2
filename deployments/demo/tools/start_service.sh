#!/usr/bin/env bash
# Deploy a service: stop the running copy (pid file), start the new one in the
# background. It stops by itself after 60 s, so a demo never leaves a process behind.
set -euo pipefail
name="$1"
run_dir=".out/${APP_ENV:-local}/run"
mkdir -p "$run_dir"
pidfile="$run_dir/$name.pid"
# alive and not a zombie (an orphan's parent may never reap it)
running() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]; }
if [[ -f "$pidfile" ]]; then
    old=$(cat "$pidfile")
    if running "$old" && kill "$old" 2>/dev/null; then
        for _ in $(seq 100); do running "$old" || break; sleep 0.05; done
        echo "stopped previous $name (pid $old)"
    fi
fi
nohup timeout 60 python3 tools/server.py >"$run_dir/$name.log" 2>&1 </dev/null &
echo $! >"$pidfile"
echo "started $name (pid $!) on 127.0.0.1:$DEMO_PORT"
# ready when it answers: wait on the port (bounded), not a fixed sleep
python3 - <<'PY'
import os, socket, sys, time
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(os.environ["DEMO_PORT"])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("service did not start listening within 10 s")
PY
