#!/usr/bin/env bash
#  protocol_python.sh BUILD_DIR
#
#  Invariant 6 (DESIGN.md): docs/protocol.md is precise enough to write a
#  client in another language from it alone. tests/protocol/lpwire.py is
#  such a client (Python 3, Debian's python3-zmq and python3-msgpack),
#  written from the doc without reading src/; tests/protocol/check_protocol.py
#  drives a 4-engine cluster with it (round trips with out-of-band values,
#  matching by parent msg_id, the replay guard and its date window, target
#  folding and refusal, retries, undecodable requests, abort on the task and
#  control channels, status, controller_heartbeat, interrupt, shutdown).
#
#  The cluster is started and stopped by tests/run_with_cluster.sh in a
#  temporary profile; only processes it started are signalled, by pid.
set -u
BUILD=${1:?usage: protocol_python.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

if ! "$PY" -c 'import zmq, msgpack' 2>/dev/null; then
    echo "protocol_python: FAIL: $PY lacks zmq or msgpack (apt-get install python3-zmq python3-msgpack)"
    exit 1
fi
# check_protocol.py is run by its #!/usr/bin/python3 line (run_with_cluster.sh
# puts the connection file right after the program).
exec "$HERE/../run_with_cluster.sh" "$BUILD" "$HERE/../protocol/check_protocol.py"
