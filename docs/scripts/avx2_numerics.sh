# Source this file on a machine with AVX-512 to compute what a machine with AVX2 alone computes:
#   (source docs/scripts/avx2_numerics.sh && cotrain compare EXPERIMENT out_dir=...)
# Each library that picks its kernels by the CPU at run time is told to pick the AVX2 ones. The variables
# are read when each library loads, so set them before the process starts (a study's workers inherit
# them). Checked 2026-12-07 (docs/results/demo.md): on an AMD EPYC with AVX-512 this reproduces, byte for
# byte, the demo data an AMD EPYC with AVX2 made (teleop, GCS plans, normalizer) and its demo table.
export OPENBLAS_CORETYPE=Haswell                                 # numpy's OpenBLAS: its AVX2 kernels
export NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"   # numpy's own SIMD loops: no AVX-512
export ATEN_CPU_CAPABILITY=avx2                                  # torch's kernels (fingerprint: torch_cpu_capability)
export ONEDNN_MAX_CPU_ISA=AVX2                                   # oneDNN, inside torch
export MKL_ENABLE_INSTRUCTIONS=AVX2                              # MKL, inside torch
