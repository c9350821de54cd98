"""scripts/plane_errors.py on a real CAVE scene with a shipped model."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from cli_helpers import REPO
from conftest import DATA
from hsicodec.checkpoints import find_model


def test_plane_errors_reports_each_planes_error_over_its_variance() -> None:
    scene = DATA / "cave" / "feathers.tif"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "plane_errors.py"), find_model(rate=0.4).name,
                           str(scene)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("feathers.tif: plane variance / first's [1. ")
    for line in lines[1:]:
        ratios = [float(v) for v in re.findall(r"\d+\.\d*|\d+", line.split("[")[1])]
        assert len(ratios) == 6 and ratios[0] < 0.5  # the leading plane is coded
