import os

# One thread per process: the machine has 2 cores and tests may run beside other jobs.
os.environ.setdefault("OMP_NUM_THREADS", "1")
