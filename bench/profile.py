"""A py-spy profile of a process (and its children: uvicorn workers) while a load runs, as the
top-20 table of docs/benchmarks.md: own samples (the function itself was running) and total
samples (it was on the stack), in % of all samples. `py-spy` comes from PyPI (dev extra).

Only samples of a thread holding the GIL count (`--gil`): py-spy cannot tell idle threads here
(waiting in poll or on a lock looked busy), and the GIL holder is the Python CPU the API spends.
Time in C without the GIL (libpq, the event loop's epoll) is not in the table."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


class Profiler:
    """`with Profiler(pid, seconds) as p: run the load`; then `p.top(20)`."""

    def __init__(self, pid: int, seconds: float, rate: int = 100) -> None:
        self.pid = pid
        self.seconds = seconds
        self.rate = rate
        self.dir = tempfile.TemporaryDirectory(prefix="bench-py-spy-")
        self.out = Path(self.dir.name) / "stacks.txt"
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None

    def __enter__(self) -> Profiler:
        binary = py_spy()
        if binary is None:
            self.error = "py-spy not installed (pip install py-spy)"
            return self
        self.proc = subprocess.Popen(
            [binary, "record", "--pid", str(self.pid), "--subprocesses", "--function", "--gil",
             "--nonblocking", "--rate", str(self.rate), "--duration", str(int(self.seconds)),
             "--format", "raw", "--output", str(self.out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            try:
                _, err = self.proc.communicate(timeout=self.seconds + 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            if self.proc.returncode != 0 and not self.out.exists():
                self.error = err.decode(errors="replace")[-500:]

    def top(self, count: int = 20) -> dict[str, Any]:
        try:
            text = self.out.read_text()
        except OSError:
            return {"error": self.error or "no profile written"}
        finally:
            self.dir.cleanup()
        return top_functions(text, count)


def _frame(raw: str) -> str:
    """`charge (ledger/api_requests.py:312)` → `charge (ledger/api_requests.py)`, paths made
    short (site-packages/… and the repository's own)."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "/perf/", "/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def top_functions(collapsed: str, count: int = 20) -> dict[str, Any]:
    """The top `count` functions by own samples from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    rows = [
        {
            "function": name,
            "own_pct": round(100 * n / samples, 1),
            "total_pct": round(100 * total[name] / samples, 1),
        }
        for name, n in own.most_common(count)
    ]
    return {"samples": samples, "top": rows}


def markdown(profile: dict[str, Any]) -> str:
    if "top" not in profile:
        return f"(no profile: {profile.get('error')})"
    lines = ["| # | function | own % | total % |", "| ---: | --- | ---: | ---: |"]
    for i, row in enumerate(profile["top"], 1):
        lines.append(f"| {i} | `{row['function']}` | {row['own_pct']} | {row['total_pct']} |")
    return "\n".join(lines)
