"""Real processes for the fault tests: start `textdqn train`, find its Ray workers and its
redis-server by walking /proc, kill them by pid, and leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARTPOLE = "configs/cartpole.yaml"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live descendant of `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = cmdline(pid)
                frontier.append(pid)
    return found


def wait_for_descendant(root: int, text: str, timeout: float = 60.0) -> int:
    """The pid of a descendant of `root` whose command line contains `text`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid, line in descendants(root).items():
            if text in line:
                return pid
        time.sleep(0.5)
    raise AssertionError(f"no process {text!r} under pid {root} after {timeout}s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def train(run_dir: Path, *args: str, config: str = CARTPOLE) -> subprocess.Popen:
    """`textdqn train CONFIG --run-dir RUN_DIR ARGS` as a child process, output to RUN_DIR.log."""
    log = open(f"{run_dir}.log", "ab")
    command = [
        sys.executable,
        "-m",
        "textdqn.cli",
        "train",
        config,
        "--quiet",
        "--run-dir",
        str(run_dir),
        *args,
    ]
    return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def resume(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "textdqn.cli", "train", "--quiet", "--resume", str(run_dir)]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True, timeout=400)


def finish(proc: subprocess.Popen, timeout: float) -> int:
    """Wait for `proc`; kill its whole tree (Ray workers included) if it overruns."""
    tree = descendants(proc.pid)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_all([proc.pid, *descendants(proc.pid)])
        kill_all(pid for pid in tree if alive(pid))


def wait_until(ready, proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    """Poll `ready()` until it holds; fail with the run's log if `proc` ends or time runs out."""
    deadline = time.time() + timeout
    while not ready():
        assert time.time() < deadline and proc.poll() is None, log_of(run_dir)
        time.sleep(0.5)


def metric_rows(run_dir: Path) -> int:
    """Rows the run has written to metrics.csv so far."""
    path = run_dir / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def log_of(run_dir: Path) -> str:
    return Path(f"{run_dir}.log").read_text(errors="replace")
