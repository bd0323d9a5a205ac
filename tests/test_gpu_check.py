"""benchmarks/gpu_check.sh on a machine without CUDA: a dry run that names every step and runs none."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_without_cuda_is_a_dry_run_naming_every_step(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--dry-run", str(tmp_path / "g")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    steps = [line for line in out.stdout.splitlines() if line.startswith("  ")]
    assert [s.split(":")[0].strip() for s in steps] == [
        "cuda tests", "train speed fp32", "train speed bf16", "train speed bf16 + compile", "sampler latency",
        "tiny study on cuda"]
    assert not (tmp_path / "g").exists()        # a dry run writes nothing
    # every file a step names is in the repository
    for name in ("tests/test_cuda.py", "benchmarks/train_speed.py", "benchmarks/sampler_latency.py",
                 "experiments/gpu_check.yaml"):
        assert name in out.stdout and (ROOT / name).is_file()
