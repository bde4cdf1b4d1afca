#!/usr/bin/env bash
# One command: set everything up, then run the main job on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/warpsniff replay pcaps/sample-calls.pcap "$@"
