"""Shared fixtures: bundled datasets and the reference fits of models/ (lme4 and nlme)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import bayeslmm as blm

ROOT = Path(__file__).resolve().parents[1]


def reference(case: str) -> dict:
    """The ``reference`` table of models/<case>.toml: lme4's or nlme's estimates
    (``fixef``, ``se``, ``sd``, ``corr``, ``sigma``, ``loglik``, ``ranef``,
    ``residual_params``), in bayeslmm's names."""
    return tomllib.loads((ROOT / "models" / f"{case}.toml").read_text())["reference"]


def ref_sd(ref: dict, group: str, term: str) -> float:
    """One standard deviation of a reference fit."""
    return next(x["value"] for x in ref["sd"] if x["group"] == group and x["term"] == term)


@pytest.fixture(scope="session")
def sleepstudy():
    return blm.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def orthodont():
    return blm.datasets.load("Orthodont")
