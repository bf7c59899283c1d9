#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build (release preset) and run the main example on its
# built-in synthetic data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target rankq-quantize
./build/release/examples/rankq-quantize "$@"
