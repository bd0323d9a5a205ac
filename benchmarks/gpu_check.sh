#!/usr/bin/env bash
# GPU readiness in one script: everything this harness does on a CUDA device, in under 8 minutes, one table.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # on a machine with a CUDA device (default OUT_DIR: gpu_check)
#   bash benchmarks/gpu_check.sh --dry-run        # anywhere: say what it would run, run nothing
#
# Steps, each timed, each a row of OUT_DIR/gpu_check.md (the benchmark tables follow it in the same file):
#   1. the CUDA-marked tests (tests/test_cuda.py: a tiny run trains on CUDA, fp32 and bf16, and acts as on
#      the CPU);
#   2. training speed of the low-dim MLP and the published U-Net, fp32, bf16 autocast, bf16 + torch.compile
#      (benchmarks/train_speed.py);
#   3. chunk latency of every sampler at batch 1 (benchmarks/sampler_latency.py);
#   4. a whole tiny study trained on the GPU (experiments/gpu_check.yaml: data on the CPU cores, two runs on
#      device cuda, 10 trials each in the Drake target sim).
# With no CUDA device (torch.cuda.is_available() false) it is a dry run: it prints the steps and exits 0.
# PYTHON picks the interpreter (default .venv/bin/python, else python3): it needs this project's
# requirements with a CUDA build of torch. A step that fails is a row saying so; the script goes on and
# exits 1 at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
OUT="${1:-gpu_check}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
COTRAIN=("$PY" -m harness.cli)

STEPS=(
  "cuda tests|$PY -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider"
  "train speed fp32|$PY benchmarks/train_speed.py --device cuda --archs mlp unet-published --seconds 5"
  "train speed bf16|$PY benchmarks/train_speed.py --device cuda --archs mlp unet-published --seconds 5 --bf16"
  "train speed bf16 + compile|$PY benchmarks/train_speed.py --device cuda --archs mlp unet-published --seconds 5 --bf16 --compile"
  "sampler latency|$PY benchmarks/sampler_latency.py --device cuda --seconds 2"
  "tiny study on cuda|${COTRAIN[*]} compare experiments/gpu_check.yaml out_dir=$OUT/study --no-progress"
)

if [[ $DRY -eq 0 ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: $PY sees no CUDA device (torch.cuda.is_available() is false): dry run"
  DRY=1
fi
if [[ $DRY -eq 1 ]]; then
  echo "gpu_check would run, in order, writing $OUT/gpu_check.md (one row per step, then each step's output):"
  for step in "${STEPS[@]}"; do echo "  ${step%%|*}: ${step#*|}"; done
  exit 0
fi

if [[ -e "$OUT" ]]; then echo "gpu_check: $OUT exists; name a new output folder" >&2; exit 2; fi
mkdir -p "$OUT"
device=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0), '| torch', torch.__version__, '| CUDA', torch.version.cuda)")
{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "device: $device; CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo
  echo "| step | status | wall s | command |"
  echo "| --- | --- | --- | --- |"
} > "$OUT/gpu_check.md"

# The device machines of this workplace bring their own python3 with a CUDA torch but not this project's other
# requirements (Drake above all): say up front which are missing, since every step after the tests needs them.
missing=$("$PY" -c "
import importlib.util as u
print(' '.join(m for m in ('pydrake', 'zarr', 'numcodecs', 'diffusers', 'gymnasium', 'scipy', 'yaml', 'tqdm', 'pyarrow')
               if u.find_spec(m) is None))")
if [[ -n "$missing" ]]; then
  echo "| python packages | MISSING: $missing (install requirements.txt with the CUDA torch, or carry wheels) | 0 | \`$PY\` |" \
    >> "$OUT/gpu_check.md"
  failed=1
fi

failed=${failed:-0}
for step in "${STEPS[@]}"; do
  name="${step%%|*}"; cmd="${step#*|}"
  log="$OUT/$(echo "$name" | tr -c 'a-z0-9\n' '_').log"
  echo "== $name: $cmd"
  start=$(date +%s.%N)
  if bash -c "$cmd" > "$log" 2>&1; then status=ok; else status="FAILED (exit $?)"; failed=1; fi
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  printf '| %s | %s | %.0f | `%s` |\n' "$name" "$status" "$wall" "$cmd" >> "$OUT/gpu_check.md"
  tail -n 3 "$log"
done
for log in "$OUT"/*.log; do
  { echo; echo "## $(basename "$log" .log)"; echo '```'; tail -n 40 "$log"; echo '```'; } >> "$OUT/gpu_check.md"
done
cat "$OUT/gpu_check.md"
exit $failed
