"""Starting and stopping Ray for textdqn's local and cluster modes."""

from __future__ import annotations

import ray


def init_ray(address: str | None = None, num_cpus: float | None = None, dashboard: bool = False) -> bool:
    """Connect to `address` ("auto" inside a cluster) or start Ray locally.

    Locally, Ray gets `num_cpus` logical CPUs (fractional actors share real cores) and the
    dashboard, when asked for, binds to 127.0.0.1. Returns True if this call started Ray,
    so the caller knows to shut it down.
    """
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level="ERROR")
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=dashboard,
                dashboard_host="127.0.0.1",
                logging_level="ERROR",
                log_to_driver=False,
            )
    except BaseException:  # e.g. Ctrl-C while Ray starts: stop what it had started
        ray.shutdown()
        raise
    return True


def shutdown_ray() -> None:
    ray.shutdown()


def kill_actors(handles: list) -> None:
    """Stop actors now (no restart)."""
    for handle in handles:
        ray.kill(handle, no_restart=True)
