#!/usr/bin/env bash
# Installs rankq's build and test dependencies from Debian's packages, only those that are missing.
# Usage: scripts/install-deps.sh [--cross]   (--cross adds the AArch64 cross compiler and qemu-user)
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libeigen3-dev nlohmann-json3-dev libgtest-dev googletest libbenchmark-dev)
if [[ "${1:-}" == "--cross" ]]; then pkgs+=(g++-aarch64-linux-gnu qemu-user); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "rankq: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
