"""Shared fixtures: bundled datasets and the reference fits in ../shared/reference."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import bayeslmm as blm

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BAYESLMM_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"


def reference(case: str) -> dict:
    """A reference fit from ../shared/reference (skip if shared/ is absent)."""
    path = REFERENCE / f"{case}.json"
    if not path.exists():
        pytest.skip(f"reference file {path} not available")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def sleepstudy():
    return blm.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def orthodont():
    return blm.datasets.load("Orthodont")
