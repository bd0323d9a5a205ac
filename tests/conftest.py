import os

# One thread per process: the machine has 2 cores and tests may run beside other jobs.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_main_thread():
    """Free each test's leftovers (Drake Meshcat servers, envs) here, in the main thread.

    Left to the garbage collector, a Meshcat object from one test can be finalized later from another
    thread (a tqdm monitor, a Meshcat server thread), and Drake aborts the whole process when a Meshcat is
    destroyed off its thread ("Fatal Python error: Aborted ... Garbage-collecting").
    """
    yield
    gc.collect()
