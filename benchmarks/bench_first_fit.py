"""The README's first command, measured as a new user meets it, beside bambi.

A fresh virtual environment gets only ``pip install .`` (no extras). In it, sleepstudy
``Reaction ~ Days + (Days | Subject)`` is fitted (NUTS, 4 chains × 1000 draws after 1000
tuning steps, as the README's command does):

* **cold**: the first fit ever on a machine: empty PyTensor, numba and bayeslmm caches;
* **warm**: the same structure in a new process once the caches are filled;
* **same process**: a second fit in the process of the first.

bambi 0.17.2 (its own venv, ``benchmarks/.bambi-venv``, made by ``bench_sampling.py``)
fits the same model cold (empty PyTensor cache) and warm, in the same run. Every fit runs
in its own process, one after another; times are the model's build plus ``fit`` (the
imports are reported apart), as the user waits for them.

    python benchmarks/bench_first_fit.py            # makes benchmarks/.fresh-venv
    python benchmarks/bench_first_fit.py --reuse    # keeps an existing fresh venv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FRESH = HERE / ".fresh-venv"
sys.path.insert(0, str(HERE))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import bayeslmm as blm
t1 = time.perf_counter()
df = blm.datasets.load("sleepstudy")
out = []
for k in range(int(sys.argv[1])):
    t = time.perf_counter()
    post = blm.LMM("Reaction ~ Days + (Days | Subject)", df).fit(
        draws=1000, tune=1000, chains=4, random_seed=k + 1, progressbar=False)
    wall = time.perf_counter() - t
    d = post.diagnostics
    out.append({"import_s": t1 - t0, "total_s": wall, "divergences": d["divergences"],
                "min_ess_bulk": d["min_ess_bulk"], "max_rhat": d["max_rhat"],
                "sampler": post.info["sampler"]})
print("RESULT " + json.dumps(out))
"""


def run(cmd: list[str], env: dict, timeout: float = 1800) -> list[dict]:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                         cwd=tempfile.gettempdir())
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            return r if isinstance(r, list) else [r]
    raise RuntimeError(res.stderr[-2000:])


def fresh_venv(reuse: bool) -> Path:
    py = FRESH / "bin" / "python"
    if reuse and py.exists():
        return py
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(FRESH)], check=True)
    t = time.perf_counter()
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    print(f"pip install . : {time.perf_counter() - t:.0f} s", flush=True)
    return py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse", action="store_true", help="reuse benchmarks/.fresh-venv")
    args = ap.parse_args()
    from bench_sampling import ensure_bambi

    py, bambi = fresh_venv(args.reuse), ensure_bambi()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        caches = {"PYTENSOR_FLAGS": f"base_compiledir={tmp}/pytensor",
                  "NUMBA_CACHE_DIR": f"{tmp}/numba", "BAYESLMM_CACHE_DIR": f"{tmp}/bayeslmm"}
        env = {**os.environ, **caches}
        cold = run([str(py), "-c", CHILD, "2"], env)
        rows += [{"tool": "bayeslmm", "fit": "cold (first ever)", **cold[0]},
                 {"tool": "bayeslmm", "fit": "same process, 2nd", **cold[1]}]
        warm = run([str(py), "-c", CHILD, "1"], env)
        rows.append({"tool": "bayeslmm", "fit": "warm (new process)", **warm[0]})
        csv = Path(tmp) / "sleepstudy.csv"
        subprocess.run([str(py), "-c", "import bayeslmm as blm; blm.datasets.load("
                        f"'sleepstudy').to_csv({str(csv)!r}, index=False)"], check=True)
        spec = {"csv": str(csv), "formula": "Reaction ~ Days + (Days | Subject)",
                "categorical": ["Subject"], "draws": 1000, "tune": 1000, "chains": 4,
                "seed": 1, "cores": min(4, os.cpu_count() or 1)}
        benv = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp}/bambi-pytensor"}
        for label in ("cold (first ever)", "warm (new process)"):
            r = run([str(bambi), str(HERE / "bambi_runner.py"), json.dumps(spec)], benv)[0]
            rows.append({"tool": "bambi 0.17.2", "fit": label, **r})
    table = pd.DataFrame(rows)
    table["ess_per_s"] = table["min_ess_bulk"] / table["total_s"]
    cols = ["tool", "fit", "sampler", "import_s", "total_s", "divergences", "min_ess_bulk",
            "ess_per_s", "max_rhat"]
    print(f"\nsleepstudy (Days | Subject), 4 chains x 1000 draws (1000 tuning), "
          f"{os.cpu_count()} cores")
    print(table[[c for c in cols if c in table]].to_string(
        index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
