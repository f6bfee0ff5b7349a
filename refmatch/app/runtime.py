"""The threads of this process: how many each compute pool (torch, BLAS, OpenMP, FAISS) may start.

torch, OpenBLAS and FAISS each start a pool as large as the machine in every process.
With two server workers on two cores those pools oversubscribe the CPU and spin against
each other (issue 9 measured a stored-seeker match at p50 113 ms with default pools
against 1.5 ms with one thread per process). So a serving process gives each pool
``cores // workers`` threads, and FAISS one thread per request thread (one query at a
time is fastest on one thread). ``scripts/bench_api.py --default-threads`` shows the
difference.
"""

from __future__ import annotations

import os
import sys

from refmatch.config import cores

_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_per_process(processes: int, available: int | None = None) -> int:
    """Threads each of ``processes`` processes may use so that together they do not exceed the cores."""
    return max(1, (available or cores()) // max(1, processes))


def set_env_threads(n: int) -> None:
    """Pools that libraries start when they load read these: call before numpy, torch or FAISS load."""
    for name in _ENV:
        os.environ[name] = str(n)


def limit_threads(n: int) -> dict[str, int]:
    """Hold every pool already loaded in this process to ``n`` threads; what was limited, by pool.

    threadpoolctl finds the BLAS and OpenMP libraries loaded (NumPy's OpenBLAS, the OpenMP
    runtimes of torch and FAISS); torch's intra-op pool is set through torch itself, and only
    if torch is loaded (importing it costs seconds). Pools started later read the
    environment (ONNX Runtime's session, opened with the model on first use), so it is set too.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    set_env_threads(n)
    threadpool_limits(limits=n)
    limited = {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in threadpool_info()}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(n)
        limited["torch"] = torch.get_num_threads()
    set_search_threads_here()
    return limited


def set_search_threads_here() -> None:
    """One FAISS thread for the searches of the calling thread (OpenMP counts per thread)."""
    from refmatch.index.threads import set_search_threads

    set_search_threads(1)


def run_below(nice: int = 0, idle: bool = False) -> list[str]:
    """Lower this process's CPU priority for background work; what was done, in words.

    ``nice``: by N. ``idle``: Linux's SCHED_IDLE class, CPU time no other task wants
    (threads started afterwards, torch's and the tokenizer's, inherit it). A process that
    leads a session of its own (``setsid``, a service manager) also has a scheduling
    group of its own where the kernel groups tasks by session (autogroup): the group's
    share is set apart from every task's class, so SCHED_IDLE alone would still take half
    of a busy machine. Its group is lowered to nice 19 as well. (``refmatch serve``
    therefore starts its indexer in its own process group, not its own session:
    measured by ``scripts/bench_live_update.py``, a SCHED_IDLE indexer in a session of
    its own took 0.57 of a core from two busy workers.)
    """
    done = []
    if nice:
        os.nice(nice)
        done.append(f"nice {nice}")
    if idle and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        done.append("SCHED_IDLE")
        if os.getsid(0) == os.getpid():
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write("19")
                done.append("autogroup nice 19")
            except OSError:  # no autogroup in this kernel, or not allowed
                pass
    return done
