#!/usr/bin/env bash
# End-to-end benchmark on a synthetic LLaMA-shaped checkpoint (docs/results.md, "Model-sized end-to-end run"):
# generates a BF16 Hugging Face folder (scripts/gen-synthetic-llama.py), quantizes it with rankq-quantize --out
# (RTN W4 g32, L2QER W4A8 k=32, LCQ W4 k=2 g32) on a small calibration set, and measures the engine's prefill and
# decode speed (rankq-llama speed: prompt 128, 64 generated tokens) on fp32 and on each quantized file. Every step
# runs under /usr/bin/time -v; the script prints one Markdown table row per step (wall time, peak RSS, file size,
# bits/weight, tokens/s). Not part of the test suite. Needs data/tokenizer-llama2-32k.bin and
# data/tinystories-valid-head.txt (scripts/get-data.sh).
#
#   scripts/bench-e2e.sh --shape 1.1b --layers 4           # a quick run
#   scripts/bench-e2e.sh --shape 7b                         # 13.5 GB checkpoint: check `df -h` first
# Options: --shape 7b|1.1b|tiny, --layers N, --build DIR (default build/release), --methods "rtn l2qer lcq",
#          --calib A:B (default 0:4), --eval A:B (default 256:258), --no-fp32-speed, --keep (keep the files).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=1.1b layers=0 build=build/release methods="rtn l2qer lcq" calib=0:4 eval=256:258 fp32_speed=1 keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) shape=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --eval) eval=$2; shift 2 ;;
    --no-fp32-speed) fp32_speed=0; shift ;;
    --keep) keep=1; shift ;;
    *) echo "bench-e2e.sh: unknown option '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
quantize=$build/examples/rankq-quantize llama=$build/examples/llama/rankq-llama
tok=data/tokenizer-llama2-32k.bin text=data/tinystories-valid-head.txt
for f in "$quantize" "$llama" "$tok" "$text"; do
  [[ -e $f ]] || { echo "bench-e2e.sh: '$f' is missing (build the tools; scripts/get-data.sh for data/)" >&2; exit 1; }
done
work=bench-models  # git-ignored
mkdir -p "$work"
name=$shape
[[ $layers != 0 ]] && name=$shape-L$layers
model=$work/$name
df -h "$work" | tail -1
log=$work/$name.log
: > "$log"
cleanup() { [[ $keep == 1 ]] || rm -rf "$model" "$work/$name".*.rq; }
trap cleanup EXIT

# Runs a step under /usr/bin/time -v; prints "| step | wall s | peak RSS MB | extra |".
step() {
  local label=$1; shift
  local out=$work/$name.step.txt
  /usr/bin/time -v "$@" > "$out" 2>&1 || { cat "$out" >&2; echo "bench-e2e.sh: step '$label' failed" >&2; exit 1; }
  cat "$out" >> "$log"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; ++i) s = s * 60 + t[i]; print s}' "$out")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$out")
  echo "$wall $rss"
}

echo "| step | wall s | peak RSS MB | file MB | bits/w | notes |"
echo "|---|---|---|---|---|---|"
[[ -d $model ]] || { read -r w r < <(step generate python3 scripts/gen-synthetic-llama.py --out "$model" --shape "$shape" $([[ $layers != 0 ]] && echo --layers "$layers"))
  echo "| generate $name (BF16) | $w | $r | $(du -sm "$model" | cut -f1) | 16 | |"; }
if [[ $fp32_speed == 1 ]]; then
  read -r w r < <(step "fp32 speed" "$llama" "$model" --tokenizer "$tok" speed)
  echo "| fp32 engine: $(grep -h '^prefill' "$work/$name.step.txt") | $w | $r | | 32 | whole model in float |"
fi
for m in $methods; do
  case $m in
    rtn) args=(--method rtn --bits 4 --group 32) ;;
    l2qer) args=(--method l2qer --bits 4 --rank 32 --calib-range "$calib") ;;
    lcq) args=(--method lcq --bits 4 --rank 2 --group 32 --calib-range "$calib") ;;
    *) echo "bench-e2e.sh: unknown method '$m'" >&2; exit 2 ;;
  esac
  out=$work/$name.$m.rq
  read -r w r < <(step "quantize $m" "$quantize" --model "$model" --tokenizer "$tok" --eval "$text" --eval-range "$eval" "${args[@]}" --out "$out")
  st=$work/$name.step.txt
  row=$(grep -E '^(RTN|L2QER|LCQ) ' "$st")
  bits=$(awk '{for (i = 1; i <= NF; ++i) if ($i ~ /^[0-9]+\.[0-9]+$/) {print $i; exit}}' <<< "${row#* W4A8 }")
  notes="$(grep -h '^calibration:' "$st" | sed 's/ per projection//') $(grep -h '^layer by layer:' "$st" | sed "s/ to '.*'//")"
  echo "| quantize $m ($(sed 's/  */ /g' <<< "$row" | cut -d' ' -f1-4)) | $w | $r | $(du -m "$out" | cut -f1) | $bits | $notes |"
  read -r w r < <(step "speed $m" "$llama" "$out" --tokenizer "$tok" speed)
  echo "| $m engine: $(grep -h '^prefill' "$work/$name.step.txt") | $w | $r | | | mapped file |"
done
echo "(log: $log; CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) vCPUs)"
