"""Command line: ``bayeslmm fit FORMULA --data NAME_OR_CSV`` (with ``--random-matrix
NAME=FILE`` or ``--covariance GROUP=FILE`` for a genomic LMM), ``bayeslmm predict``
and ``bayeslmm datasets``.

Examples
--------
>>> main(["datasets"])  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
name rows ...
sleepstudy 180 Reaction, Days, Subject ...
0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd

from .errors import BayesLMMError, DataError

__all__ = ["main"]


#: the library's keyword arguments and this command's flags for them
_FLAGS = {"new_levels": "--new-levels", "kind": "--kind", "sampler": "--sampler",
          "draws": "--draws", "tune": "--tune", "chains": "--chains", "random_seed": "--seed",
          "method": "--map"}


def in_cli_words(message: str) -> str:
    """An error message with the library's keyword arguments written as this command's
    flags (``new_levels='sample'`` → ``--new-levels sample``).

    >>> in_cli_words("pass new_levels='sample' to draw them; draws must be positive")
    'pass --new-levels sample to draw them; --draws must be positive'
    """
    names = "|".join(_FLAGS)
    message = re.sub(rf"\b({names})=(['\"]?)([\w.-]+)\2",
                     lambda m: f"{_FLAGS[m.group(1)]} {m.group(3)}", message)
    return re.sub(rf"(^|; )({names}) must", lambda m: f"{m.group(1)}{_FLAGS[m.group(2)]} must",
                  message)


def _load_data(spec: str) -> pd.DataFrame:
    from . import datasets

    path = Path(spec)
    if path.suffix.lower() in (".csv", ".gz") or path.exists():
        data = _read_csv(path)
        if data.empty:
            raise DataError(f"{spec!r} holds no rows of data.")
        return data
    return datasets.load(spec)


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """A CSV file, or one DataError line saying what is wrong with it."""
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder; give a CSV file.")
    if not path.exists():
        raise DataError(f"No such file {str(path)!r}.")
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{str(path)!r} is empty; give a CSV file with a header row and "
                        "data.") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{str(path)!r} is not a readable CSV file ({first}); give a "
                        "comma-separated text file with a header row.") from None
    except OSError as exc:
        raise DataError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None


def _check_writable(file: str | None, flag: str) -> None:
    """Refuse, before any fitting, an output path that cannot be written."""
    if file is None:
        return
    path = Path(file)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataError(f"{flag} {file!r} is a folder; give a file name.")
    if not parent.is_dir():
        raise DataError(f"{flag} {file!r}: no folder {str(parent)!r}; create it first.")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"{flag} {file!r} cannot be written (permission denied).")


def _write(file: str, write, flag: str) -> None:
    try:
        write(file)
    except OSError as exc:
        raise DataError(f"{flag} {file!r} could not be written: {exc.strerror or exc}."
                        ) from None


def _matrix_file(spec: str, what: str):
    """``NAME=FILE`` → (name, array or label-indexed DataFrame)."""
    name, sep, file = spec.partition("=")
    if not sep or not name or not file:
        raise BayesLMMError(f"{what} takes NAME=FILE (e.g. snps=genotypes.npy), got {spec!r}.")
    return name, _read_matrix(file)


def _read_matrix(file: str):
    import numpy as np

    path = Path(file)
    if not path.exists():
        raise DataError(f"No such file {file!r}.")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{file!r} is not a NumPy .npy array ({exc}).") from None
    if path.suffix.lower() in (".csv", ".gz"):
        return _read_csv(path, index_col=0)
    raise DataError(f"{file!r}: give a .npy array or a .csv whose first column holds the "
                    "row (or level) labels.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bayeslmm", description="Bayesian linear mixed models.")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit a model and print its summary")
    f.add_argument("formula", help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    f.add_argument("--data", required=True, help="a bundled dataset name or a CSV file")
    f.add_argument("--map", choices=["ML", "REML"], help="fit by ML or REML instead of NUTS")
    f.add_argument("--residual", metavar="SPEC",
                   help="residual structure, e.g. \"AR1(group=Subject)\", "
                        "\"Residual(VarIdent(by=Sex), CAR1(time=age, group=Subject))\", "
                        "\"CorExp(coords=(x, y), group=site, nugget=True)\", "
                        "\"VarComb(VarIdent(by=Sex), VarPower(covariate=age))\"")
    f.add_argument("--weights", metavar="COLUMN",
                   help="lme4's prior weights: residual variance sigma^2 / COLUMN")
    f.add_argument("--sigma", metavar="VALUE", type=float,
                   help="fix the residual sd at this known value (nlme's lmeControl(sigma=)); "
                        "with --residual \"VarFixed(covariate=vi)\" and --sigma 1: a "
                        "meta-analysis with known sampling variances vi")
    f.add_argument("--random-matrix", metavar="NAME=FILE",
                   help="a wide random-effect matrix (genotypes): .npy with the data's rows "
                        "in order, or .csv whose first column holds the --id of each row")
    f.add_argument("--covariance", metavar="GROUP=FILE",
                   help="known covariance of the levels of GROUP, whose term is (1 | GROUP): "
                        ".csv with the level labels as first column and header, or .npy")
    f.add_argument("--id", metavar="COLUMN",
                   help="data column naming the rows (matched to a --random-matrix CSV)")
    f.add_argument("--chains", type=int, default=4)
    f.add_argument("--draws", type=int, default=1000)
    f.add_argument("--tune", type=int, default=1000)
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--sampler", default="auto", choices=["auto", "pymc", "nutpie", "numpyro"])
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    f.add_argument("--json", metavar="OUT", help="write the result's to_dict() as JSON")
    f.add_argument("--save", metavar="FILE",
                   help="save the fit (netCDF) for 'predict' (posterior or ML/REML)")
    pr = sub.add_parser("predict", help="predict new rows from a saved fit")
    pr.add_argument("fit", help="a fit saved with 'bayeslmm fit --save FILE'")
    pr.add_argument("--data", required=True, help="CSV of the rows to predict")
    pr.add_argument("--out", required=True, help="CSV to write")
    pr.add_argument("--new-matrix", metavar="FILE",
                    help="rows of the random matrix for the new rows (.npy or .csv, in "
                         "their order), for a fit with --random-matrix")
    pr.add_argument("--kind", choices=["mean", "response"], default="mean")
    pr.add_argument("--weights", metavar="COLUMN",
                    help="prior weights of the new rows (--kind response; default: the "
                         "fit's weights column)")
    pr.add_argument("--new-levels", choices=["sample", "population", "error"],
                    default="sample")
    pr.add_argument("--no-random", action="store_true", help="population-level predictions")
    pr.add_argument("--hdi", type=float, default=0.94, help="interval probability")
    pr.add_argument("--seed", type=int, default=None)
    sub.add_parser("datasets", help="list the bundled datasets")
    return p


def _predict(args) -> int:
    import arviz as az

    from .io import load
    from .results.base import MapBase
    from .results.kernel_base import KernelResultBase

    _check_writable(args.out, "--out")
    if not 0 < args.hdi < 1:
        raise BayesLMMError(f"--hdi must be a probability between 0 and 1, got {args.hdi}.")
    if not Path(args.fit).is_file():
        raise DataError(f"No such fit file {args.fit!r}; save one with 'bayeslmm fit ... "
                        "--save FILE'.")
    result = load(args.fit)
    new = _load_data(args.data)
    if isinstance(result, MapBase):
        return _predict_map(args, result, new)
    if isinstance(result, KernelResultBase):  # a random matrix or known covariance
        new_X = None
        if args.new_matrix:
            new_X = _read_matrix(args.new_matrix)
            new_X = new_X.to_numpy() if isinstance(new_X, pd.DataFrame) else new_X
        draws = result.predict(new, new_X=new_X, include_random=not args.no_random)
    else:
        if args.new_matrix:
            raise BayesLMMError("--new-matrix is for fits with --random-matrix.")
        draws = result.predict(new, kind=args.kind, include_random=not args.no_random,
                               new_levels=args.new_levels, random_seed=args.seed,
                               weights=args.weights)
    hdi = az.hdi(draws, hdi_prob=args.hdi)[draws.name].values
    pct = f"{args.hdi:.0%}".rstrip("%")
    out = new.copy()
    out["mean"] = draws.mean(("chain", "draw")).values
    out["sd"] = draws.std(("chain", "draw")).values
    out[f"hdi_{pct}_lower"] = hdi[:, 0]
    out[f"hdi_{pct}_upper"] = hdi[:, 1]
    _write(args.out, lambda f: out.to_csv(f, index=False), "--out")
    print(f"Wrote {len(out)} predictions to {args.out}")
    return 0


def _predict_map(args, result, new: pd.DataFrame) -> int:
    """An ML/REML fit's predicted means, with standard errors and Wald intervals where
    the fit gives them (not for a random matrix's or known covariance's fits)."""
    from scipy.stats import norm

    from .results.kernel_base import KernelResultBase

    if args.kind != "mean":
        raise BayesLMMError("An ML/REML fit predicts means: drop --kind response, or "
                            "predict from a posterior fit.")
    out = new.copy()
    if isinstance(result, KernelResultBase):
        new_X = _read_matrix(args.new_matrix) if args.new_matrix else None
        new_X = new_X.to_numpy() if isinstance(new_X, pd.DataFrame) else new_X
        out["fit"] = result.predict(new, new_X=new_X,
                                    include_random=not args.no_random).to_numpy()
    else:
        if args.new_matrix:
            raise BayesLMMError("--new-matrix is for fits with --random-matrix.")
        pred = result.predict(new, include_random=not args.no_random,
                              new_levels=args.new_levels, se_fit=True)
        z = norm.ppf(0.5 + args.hdi / 2)
        pct = f"{args.hdi:.0%}".rstrip("%")
        out["fit"], out["se"] = pred["fit"].to_numpy(), pred["se"].to_numpy()
        out[f"ci_{pct}_lower"] = out["fit"] - z * out["se"]
        out[f"ci_{pct}_upper"] = out["fit"] + z * out["se"]
    _write(args.out, lambda f: out.to_csv(f, index=False), "--out")
    print(f"Wrote {len(out)} predictions to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayeslmm`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            from .datasets import describe

            print(describe().to_string(index=False))
            return 0
        if args.command == "predict":
            return _predict(args)
        from .model import LMM
        from .residual.structures import parse_residual

        _check_writable(args.json, "--json")
        _check_writable(args.save, "--save")
        residual = parse_residual(args.residual) if args.residual else None
        data = _load_data(args.data)
        if args.id:
            if args.id not in data.columns:
                raise DataError(f"--id: no column {args.id!r} in the data.")
            data = data.set_index(args.id, drop=False)
        extra = {}
        if args.random_matrix:
            extra["random_matrices"] = dict([_matrix_file(args.random_matrix,
                                                          "--random-matrix")])
        if args.covariance:
            extra["covariances"] = dict([_matrix_file(args.covariance, "--covariance")])
        if args.weights:
            extra["weights"] = args.weights
        if args.sigma is not None:
            extra["sigma"] = args.sigma
        model = LMM(args.formula, data, residual=residual, **extra)
        if args.map:
            result = model.fit_map(method=args.map)
        else:
            result = model.fit(draws=args.draws, tune=args.tune, chains=args.chains,
                               random_seed=args.seed, sampler=args.sampler,
                               progressbar=not args.no_progress)
        print(result)
        if args.save:
            _write(args.save, result.save, "--save")
            print(f"\nSaved {args.save}")
        if args.json:
            text = json.dumps(result.to_dict(), indent=2)
            _write(args.json, lambda f: Path(f).write_text(text), "--json")
            print(f"\nWrote {args.json}")
        return 0
    except BayesLMMError as exc:
        print(f"bayeslmm: error: {in_cli_words(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
