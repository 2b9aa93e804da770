"""Shared fixtures: bundled datasets and the reference fits of models/ (lme4 and nlme)."""

from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import pytest

import bayeslmm as blm

ROOT = Path(__file__).resolve().parents[1]


def reference(case: str) -> dict:
    """The ``reference`` table of models/<case>.toml: lme4's or nlme's estimates
    (``fixef``, ``se``, ``sd``, ``corr``, ``sigma``, ``loglik``, ``ranef``,
    ``residual_params``), in bayeslmm's names."""
    return tomllib.loads((ROOT / "models" / f"{case}.toml").read_text())["reference"]


def inference_reference(case: str) -> dict:
    """models/inference/<case>.json: lme4's profile and Wald intervals, lmerTest's and
    pbkrtest's tests, lme4's anova tables (made by models/make_inference.R)."""
    return json.loads((ROOT / "models" / "inference" / f"{case}.json").read_text())


def fit_reference(ref: dict) -> blm.MapResult:
    """The bayeslmm fit of a reference case (dataset, formula, method), warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return blm.LMM(ref["formula"], blm.datasets.load(ref["dataset"])).fit_map(ref["method"])


def ref_sd(ref: dict, group: str, term: str) -> float:
    """One standard deviation of a reference fit."""
    return next(x["value"] for x in ref["sd"] if x["group"] == group and x["term"] == term)


@pytest.fixture(scope="session")
def sleepstudy():
    return blm.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def orthodont():
    return blm.datasets.load("Orthodont")
