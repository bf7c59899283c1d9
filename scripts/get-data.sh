#!/usr/bin/env bash
# Puts the real data that the tests, the fuzz seeds and the docs' commands use into the repository's git-ignored
# data/ folder (or --dest DIR), every file checked against its SHA-256 below.
#
#   scripts/get-data.sh                 download each file from its upstream location (needs internet; curl or wget)
#   scripts/get-data.sh --from DIR      copy each file from DIR (a folder holding the same files, e.g. a CI cache)
#   scripts/get-data.sh --dest DIR      write into DIR instead of <repo>/data (tests: RANKQ_DATA_DIR=DIR)
#
# A file already in place with the right SHA-256 is kept. Each file is written to a temporary name in the
# destination, checked, then renamed: a missing source, a failed download or a checksum mismatch is an error
# (exit status 1, the file named) and leaves no bad file in the destination (a wrong file already there is
# removed). Only regular files are ever replaced. Provenance and licenses: docs/data.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# name | SHA-256 | upstream URL (pinned commits; every hash equals the upstream file's)
files=(
  "stories260K.bin|b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696|https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin"
  "tok512.bin|037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312|https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/tok512.bin"
  "tinyllamas-stories-260k-f32.gguf|c14806920629b6c217445c69d7ac61bd0e4047289f8ab824c3f0b4f827a5d1cb|https://github.com/crabml/crabml/raw/0151f893c2ef86192bfb24fc7823779391bf0ea3/testdata/tinyllamas-stories-260k-f32.gguf"
  "tokenizer-llama2-32k.bin|50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361|https://github.com/flaneur2020/llama2.rs/raw/3b5a75b2a96d4ada4918c7643d4406a45bc57336/testdata/tokenizer.bin"
  "tinystories-valid-head.txt|5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6|https://github.com/yuninxia/moe-routing-bench/raw/bb9bb0bd461aa77cf6ab89423b758f586a6f75d1/data/tinystories_val.txt"
  "wikitext-2-raw-v1.test.raw|4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c|https://github.com/Tylogi/TyloQuant/raw/aa7023b3a96905a70f7a7ce9836834f02694c670/data/wikitext-2-raw/wiki.test.raw"
)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "get-data.sh: $*" >&2; exit 1; }

from="" dest="$repo/data"
while (($#)); do
  case $1 in
    --from) (($# >= 2)) || die "--from needs a directory"; from=$2; shift 2 ;;
    --dest) (($# >= 2)) || die "--dest needs a directory"; dest=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if [[ -n $from && ! -d $from ]]; then die "--from '$from' is not a directory"; fi
if [[ -e $dest && ! -d $dest ]]; then die "--dest '$dest' exists and is not a directory"; fi
command -v sha256sum >/dev/null || die "sha256sum not found (Debian package coreutils)"
if [[ -z $from ]] && ! command -v curl >/dev/null && ! command -v wget >/dev/null; then
  die "neither curl nor wget found: install one, or copy the files with --from DIR"
fi
mkdir -p "$dest"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

fetch() {  # $1 = name, $2 = URL, $3 = output file
  if [[ -n $from ]]; then
    [[ -f $from/$1 ]] || { echo "  missing: $from/$1" >&2; return 1; }
    cp -- "$from/$1" "$3"
  elif command -v curl >/dev/null; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$3" "$2"
  else
    wget -q -O "$3" "$2"
  fi
}

failed=()
for entry in "${files[@]}"; do
  IFS='|' read -r name sha url <<<"$entry"
  target=$dest/$name
  if [[ -L $target || (-e $target && ! -f $target) ]]; then
    echo "$name: $target exists and is not a regular file; not touching it" >&2; failed+=("$name"); continue
  fi
  if [[ -f $target ]]; then
    if [[ $(sha_of "$target") == "$sha" ]]; then echo "$name: present, SHA-256 ok"; continue; fi
    echo "$name: present with a wrong SHA-256; removing it and fetching again" >&2
    rm -f -- "$target"
  fi
  tmp=$(mktemp "$dest/.$name.XXXXXX")
  if ! fetch "$name" "$url" "$tmp"; then
    rm -f -- "$tmp"; echo "$name: could not get it from ${from:-$url}" >&2; failed+=("$name"); continue
  fi
  got=$(sha_of "$tmp")
  if [[ $got != "$sha" ]]; then
    rm -f -- "$tmp"
    echo "$name: SHA-256 mismatch (expected $sha, got $got); not installed" >&2; failed+=("$name"); continue
  fi
  chmod 644 "$tmp"
  mv -f -- "$tmp" "$target"
  echo "$name: installed, SHA-256 ok"
done

if ((${#failed[@]})); then die "failed: ${failed[*]} (into $dest)"; fi
echo "get-data.sh: all ${#files[@]} files in $dest"
