"""Every example script runs end to end with small settings (in a subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
SMALL = {
    "tov_mass_radius.py": ["--n-stars", "24"],
    "observations_likelihood.py": ["--catalog", "pulsar_masses", "--eos", "SLy4"],
    "toy_noise_injection.py": ["--steps", "40", "--seeds", "2", "--checkpoints", "2"],
    "fit_nicer.py": ["--warmup", "20", "--draws", "20"],
    "prior_dependence.py": ["--warmup", "10", "--draws", "10", "--priors", "uniform"],
    "compare_methods.py": ["--tiny"],
    "reproduce_ffm2019.py": [
        *("--n-eos", "40", "--n-sets", "4", "--n-s", "2", "--epochs", "2", "--models", "2"),
        *("--n-val", "8"),
    ],
}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    res = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), *SMALL.get(script.name, [])],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert res.returncode == 0, res.stderr
    assert any(tmp_path.glob("*.png"))
