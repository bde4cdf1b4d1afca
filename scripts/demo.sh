#!/usr/bin/env bash
# One command: set everything up, analyse the bundled sample capture, then keep
# serving its metrics on http://localhost:10780/metrics (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/warpsniff replay pcaps/sample-calls.pcap --config pcaps/sample-calls.yml \
    --listen "${WARPSNIFF_LISTEN:-:10780}" --keep-serving "$@"
