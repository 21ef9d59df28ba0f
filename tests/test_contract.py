"""The library contract as a table: every public callable of every lnfl module (each name in its ``__all__``),
for each of its arguments the invalid values a careless caller passes, and the argument name the error must
contain; then valid edge cases that must give finite results.

A public callable without a row, or an argument without invalid values, fails
``test_every_public_callable_has_a_row`` / ``test_every_argument_has_invalid_values``: adding a function to a
module's ``__all__`` means adding its row to ``ROWS`` (one ``Row`` per function, grouped by module).

Beside the table: divergence (TrainingDivergedError naming the step and the real cause, the same in both
engines, SGD and K classes), huge ``steps`` refused up front, ``requires_grad`` inputs detached, checks at entry
only (no per-step cost), seeded runs bit-identical, and ``download_cifar10`` never replacing a file it did not
write.  Problems are tiny (n = 8, d = 16, m = 2) so the whole file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import math
import pickle
import pkgutil
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
import torch

import lnfl

matplotlib.use("Agg")
torch.set_num_threads(1)

#: Modules outside this table, and why.
EXEMPT_MODULES = {
    "widgets": "interactive explorers, owned and tested by tests/test_widgets.py",
    "coursework": "the coursework tool, owned and tested by tests/test_coursework.py",
    "plain": "the coursework tool's Markdown converter, tested by tests/test_coursework.py",
}

#: Public names that are not entry points taking user input, and why.
NOT_ENTRY_POINTS = {
    "lnfl.data.LabelNoise": "a mixin with no arguments (the clean/noisy masks of a data set)",
    "lnfl.training.History": "the record train() returns",
    "lnfl.training.TrainingDivergedError": "an exception class",
    "lnfl.engine.Diverged": "an exception class (lnfl.training turns it into TrainingDivergedError)",
    "lnfl.race.Race": "the record gamma_race() returns",
    "lnfl.race.Growth": "the record stage_one_growth() returns",
    "lnfl.stages.StageOneSummary": "the record stage_one_summary() returns",
    "lnfl.stages.StageTwoSummary": "the record stage_two_summary() returns",
    "lnfl.theory.Condition": "the record check_conditions() returns",
    "lnfl.beyond.MultiClassHistory": "the record train_multiclass() returns",
    "lnfl.realdata.RealHistory": "the record train_classifier() returns",
    "lnfl.regimes.Clocks": "the record stage_one_clocks() returns",
    "lnfl.regimes.SlopeFit": "the record slope_interval() returns",
    "lnfl.regimes.Collapse": "the record collapse() returns",
    "lnfl.selection.StoppingReport": "the record stopping_vs_window() returns",
}

NAN, INF = float("nan"), float("inf")
CUDA_MISSING = "cuda:99" if torch.cuda.is_available() else "cuda"


# ------------------------------------------------------------------------------------------ the tiny problem


def _fake_cifar(folder: Path) -> Path:
    """An extracted CIFAR-10 folder with two images of classes 0 and 1 per batch (written here, never fetched)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        g = torch.Generator().manual_seed(k)
        data = torch.randint(0, 256, (4, 3072), generator=g, dtype=torch.uint8)
        (folder / name).write_bytes(pickle.dumps({b"data": data.numpy(), b"labels": [0, 0, 1, 1]}))
    return folder


@functools.cache
def C() -> SimpleNamespace:  # noqa: N802 - the context every row reads
    """n = 8, d = 16, m = 2, two noisy samples, a Stage I window at steps 1..18 (seed 0), a test set of 6."""
    from lnfl.beyond import sample_multiclass
    from lnfl.data import Dataset, SignalNoiseModel
    from lnfl.realdata import ImageData, ImagePair, load_digits_pair, small_cnn
    from lnfl.stages import run_batch
    from lnfl.training import setup

    s = setup(seed=0, n_test=6, n=8, d=16, m=2, tau_plus=0.25, tau_minus=0.25)
    data, W0 = s.data, s.W0
    hist = s.train(steps=40, record_every=1)
    wide = setup(seed=0, n_test=6, n=8, d=60, m=2)  # another d
    mc = sample_multiclass(3, 8, 16, 4.0, tau=0.2, seed=0)
    digits = load_digits_pair(seed=0)
    tr, te = digits.train, digits.test
    small = ImagePair(ImageData(tr.x[:12], tr.y[:12], tr.y_obs[:12]), ImageData(te.x[:6], te.y[:6], te.y[:6]),
                      (4, 9), 0.2, 0.2, 0, "digits 4 vs 9, 12 images")  # fmt: skip
    import tempfile

    cifar = _fake_cifar(Path(tempfile.mkdtemp(prefix="lnfl-contract-")) / "cifar-10-batches-py")
    P = W0.reshape(1, 4, 16) @ torch.cat([data.mu[None], -data.mu[None], data.xi]).T  # projections (1, 4, 10)
    return SimpleNamespace(
        s=s,
        data=data,
        test=s.test,
        model=s.model,
        W0=W0,
        W=hist.W,
        hist=hist,
        late=s.train(steps=40, record_every=8),
        other_hist=setup(seed=1, n_test=6, n=8, d=16, m=2).train(steps=3),
        wide=wide,
        mc=mc,
        Wm=0.01 * torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
        mch=_resolve("lnfl.beyond.train_multiclass")(
            0.01 * torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64), mc, steps=20
        ),
        pair=small,
        net=small_cnn(small.image_shape, channels=2, seed=0),
        cifar=cifar,
        losses=hist.sample_loss,
        sel=hist.sample_loss[5] < math.log(2),
        Z=torch.cat([data.mu[None], -data.mu[None], data.xi])[None],
        P=P,
        S=torch.relu(P),
        c=(data.y < 0).long()[None],
        j=torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64),
        runs=run_batch([0], 2, n=8, d=16, m=2),
        zero_mu=Dataset(torch.zeros(16, dtype=torch.float64), data.xi, data.y, data.y_obs),
        big_mu=SignalNoiseModel(16, 1e200).sample(8),
    )


class L:
    """A value built from the context when the row is used (tensors of the tiny problem)."""

    def __init__(self, build: Callable[[SimpleNamespace], object]) -> None:
        self.build = build

    def __call__(self, c: SimpleNamespace) -> object:
        return self.build(c)


@dataclass
class B:
    """An invalid value whose error must name ``blame`` (a path such as ``setups[1].eta``), not the argument."""

    value: object
    blame: str


def _value(v: object, c: SimpleNamespace) -> object:
    return v(c) if isinstance(v, L) else v


@dataclass
class Row:
    """One public callable: a valid call (``valid(c)``: keyword arguments), invalid values per argument, and
    valid edge cases (keyword changes to the valid call) that must give finite results.  ``**name`` in ``bad``
    stands for the ``**overrides`` of a configuration: its values are dicts splatted into the call."""

    target: str
    valid: Callable[[SimpleNamespace], dict] | None
    bad: dict[str, list] = field(default_factory=dict)
    edges: list[Callable[[SimpleNamespace], dict]] = field(default_factory=list)
    free: dict[str, str] = field(default_factory=dict)  # arguments with no invalid value, and why
    call: Callable[..., object] | None = None  # how to call (methods, rcParams kept apart); default the target
    no_valid: str = ""  # why there is no valid call here (network, minutes of work)
    base: Callable[[SimpleNamespace], dict] | None = None  # without a valid call: the other arguments

    def fn(self) -> Callable[..., object]:
        return _resolve(self.target)

    def __call__(self, ctx: SimpleNamespace, /, **kw: object) -> object:
        return self.call(ctx, **kw) if self.call else self.fn()(**kw)


def _resolve(target: str) -> Callable[..., object]:
    parts = target.split(".")
    obj: object = importlib.import_module(".".join(parts[:2]))
    for p in parts[2:]:
        obj = getattr(obj, p)
    return obj  # type: ignore[return-value]


# invalid values shared by many arguments
INT1 = [0, -1, 2.5, "3", True, None]  # an integer >= 1
INT0 = [-1, 1.5, "0", True, None]  # an integer >= 0
POS = [0, -1.0, NAN, INF, "1", None, True]  # a finite real > 0
TAU = [-0.1, 0.5, NAN, "0.1", None]  # a flip rate in [0, 1/2)
SEED = [-1, 2**63, 1.5, "0", None]
DTYPE = [torch.float16, torch.bfloat16, torch.int64, "float64", None]
DEVICE = [CUDA_MISSING, "gpu0", 3]
BOOL = [1, "yes", None]
HIST = [None, "hist", L(lambda c: c.s), L(lambda c: c.hist.gamma)]
LOSSES = [
    "l",
    L(lambda c: c.losses.half()),
    L(lambda c: c.losses * NAN),
    L(lambda c: -c.losses),
    L(lambda c: c.losses[None]),
]


def W_BAD(name: str, d: int = 16) -> list:  # noqa: N802
    """Invalid weights for a (2, m, d) argument called ``name``."""
    return [
        "W",
        None,
        L(lambda c: c.W0.numpy()),
        L(lambda c: c.W0.half()),
        L(lambda c: c.W0.long()),
        L(lambda c: c.W0.float()),  # dtype of the data is float64
        L(lambda c: c.W0 * NAN),
        L(lambda c: c.W0.reshape(4, 16)),
        L(lambda c: torch.zeros(3, 2, d, dtype=torch.float64)),
        L(lambda c: torch.zeros(2, 2, d + 1, dtype=torch.float64)),
        L(lambda c: torch.zeros(2, 0, d, dtype=torch.float64)),
    ]


def DATA_BAD(name: str = "data") -> list:  # noqa: N802
    """Invalid training sets: wrong type, or one that does not match the other arguments."""
    return ["data", None, L(lambda c: c.W0), L(lambda c: c.mc), L(lambda c: c.wide.data)]


def HD(fn_kw: dict | None = None) -> Callable[[SimpleNamespace], dict]:  # noqa: N802
    return lambda c: {"hist": c.hist, "data": c.data, **(fn_kw or {})}


HD_BAD = {"hist": HIST, "data": ["d", None, L(lambda c: c.test), L(lambda c: c.mc)]}


def _ti(c: SimpleNamespace, **kw: object) -> object:  # train with test set, tiny
    from lnfl.training import train

    return train(**{"W0": c.W0, "data": c.data, "steps": 3, **kw})


ROWS: list[Row] = [
    # ------------------------------------------------------------------------------------------------ data
    Row(
        "lnfl.data.Dataset",
        lambda c: {"mu": c.data.mu, "xi": c.data.xi, "y": c.data.y, "y_obs": c.data.y_obs},
        {
            "mu": ["mu", L(lambda c: c.data.mu[:-1]), L(lambda c: c.data.mu.half()), L(lambda c: c.data.mu * NAN),
                   L(lambda c: c.data.mu.float()), L(lambda c: c.data.mu.numpy())],
            "xi": ["xi", L(lambda c: c.data.xi[0]), L(lambda c: c.data.xi.to(torch.bfloat16)), L(lambda c: c.data.xi.long()),
                   L(lambda c: c.data.xi * INF), L(lambda c: torch.zeros(0, 16, dtype=torch.float64))],
            "y": ["y", L(lambda c: 2 * c.data.y), L(lambda c: c.data.y[:-1]), L(lambda c: c.data.y > 0), L(lambda c: c.data.y * NAN)],
            "y_obs": [L(lambda c: 0 * c.data.y), L(lambda c: c.data.y[:3]), [1, -1]],
        },  # fmt: skip
        [lambda c: {"mu": torch.ones(1, dtype=torch.float64), "xi": torch.ones(1, 1, dtype=torch.float64),
                    "y": torch.ones(1), "y_obs": -torch.ones(1, dtype=torch.int64)}],  # fmt: skip
    ),
    Row(
        "lnfl.data.SignalNoiseModel",
        lambda c: {"d": 16, "mu_norm": 4.0},
        {
            "d": INT1,
            "mu_norm": POS + [B({"mu_norm": 1e39, "dtype": torch.float32}, "mu_norm")],
            "sigma_xi": POS,
            "tau_plus": TAU,
            "tau_minus": TAU,
            "dtype": DTYPE,
            "device": DEVICE,
        },
        [lambda c: {"d": 1, "mu_norm": 1e300, "tau_plus": 0.4999, "sigma_xi": 1e-300}],
    ),
    Row(
        "lnfl.data.SignalNoiseModel.sample",
        lambda c: {"n": 8, "seed": 3},
        {"n": INT1 + [10**12], "seed": SEED},
        [lambda c: {"n": 1, "seed": 2**63 - 1}],
        call=lambda c, **kw: c.model.sample(**kw),
    ),
    Row(
        "lnfl.data.SignalNoiseModel.n_snr2",
        lambda c: {"n": 8},
        {"n": INT1},
        call=lambda c, **kw: c.model.n_snr2(**kw),
    ),
    Row(
        "lnfl.data.SignalNoiseModel.from_n_snr2",
        lambda c: {"d": 16, "n": 8, "n_snr2": 4.0},
        {"d": INT1, "n": INT1, "n_snr2": POS + [B({"n_snr2": 1e308, "d": 10**9}, "n_snr2")], "sigma_xi": POS,
         "tau_plus": TAU, "tau_minus": TAU, "dtype": DTYPE, "device": DEVICE},  # fmt: skip
    ),
    Row(
        "lnfl.data.Dataset.to",
        lambda c: {"dtype": torch.float32},
        {"device": DEVICE, "dtype": [torch.float16, torch.int64, "float32"]},
        call=lambda c, **kw: c.data.to(**kw),
    ),
    Row("lnfl.data.orthogonal_noise", lambda c: {"data": c.data}, {"data": ["d", None, L(lambda c: c.mc), L(lambda c: c.zero_mu)]}),
    # ----------------------------------------------------------------------------------------------- model
    Row(
        "lnfl.model.init_weights",
        lambda c: {"m": 2, "d": 16},
        {"m": INT1, "d": INT1, "sigma0": POS + [1e308], "seed": SEED, "dtype": DTYPE, "device": DEVICE},
        [lambda c: {"m": 1, "d": 1, "sigma0": 1e-300, "dtype": torch.float32}],
    ),
    *[
        Row(
            f"lnfl.model.{name}",
            lambda c: {"W": c.W, "data": c.data},
            {"W": W_BAD("W"), "data": DATA_BAD()},
            [lambda c: {"W": torch.zeros_like(c.W)}, lambda c: {"W": c.W.clone().requires_grad_(True)},
             lambda c: {"W": 1e100 * c.W}],  # fmt: skip
        )
        for name in ("network_output", "sample_losses", "gradient", "autograd_gradient")
    ],
    *[
        Row(
            f"lnfl.model.{name}",
            lambda c: {"z": torch.linspace(-5, 5, 11, dtype=torch.float64)},
            {"z": ["z", 1.0, torch.tensor([0.0, NAN]), torch.tensor([INF]), torch.tensor([1, 2]), torch.zeros(2).half()]},
            [lambda c: {"z": torch.tensor([-1e300, 1e300, 0.0])}, lambda c: {"z": torch.tensor(3.0)}],
        )
        for name in ("logistic_loss", "dloss")
    ],
    # -------------------------------------------------------------------------------------------- training
    Row(
        "lnfl.training.setup",
        lambda c: {"seed": 0, "n_test": 2, "n": 8, "d": 16, "m": 2},
        {
            "seed": SEED + [2**63 - 1],
            "n_test": INT1,
            "dtype": DTYPE,
            "**overrides": [B({"bogus": 1}, "bogus"), B({"m": 0}, "m"), B({"d": 2.5}, "d"), B({"eta": -1}, "eta"),
                            B({"tau_plus": 0.5}, "tau_plus"), B({"n_snr2": 0}, "n_snr2"), B({"sigma0": NAN}, "sigma0"),
                            B({"sigma_xi": "1"}, "sigma_xi"), B({"n": 0}, "n"), B({"tau_minus": -1}, "tau_minus")],
        },  # fmt: skip
        [lambda c: {"n": 1, "d": 1, "m": 1, "n_test": 1, "dtype": torch.float32, "tau_plus": 0.49}],
    ),
    Row(
        "lnfl.training.train",
        lambda c: {"W0": c.W0, "data": c.data, "steps": 3, "test": c.test},
        {
            "W0": W_BAD("W0"),
            "data": DATA_BAD(),
            "eta": POS,
            "steps": INT0 + [10**8, 10**9],
            "record_every": INT1,
            "test": ["test", L(lambda c: c.wide.test), L(lambda c: c.test.to(dtype=torch.float32)), L(lambda c: c.wide.model),
                     L(lambda c: c.mc)],
            "rho_dtype": [torch.float16, torch.int64, "float32"],
            "engine": ["fast", 1, None],
        },  # fmt: skip
        [lambda c: {"steps": 0}, lambda c: {"eta": 1e-300}, lambda c: {"engine": "weights", "record_every": 7},
         lambda c: {"engine": "coef", "test": c.model}, lambda c: {"rho_dtype": torch.float32},
         lambda c: {"W0": torch.zeros_like(c.W0)}, lambda c: {"data": c.zero_mu, "test": None}],  # fmt: skip
    ),
    Row(
        "lnfl.training.train_batch",
        lambda c: {"setups": [c.s, c.s], "steps": 2},
        {
            "setups": [[], "s", None, B(L(lambda c: [c.s, "x"]), "setups"),
                       B(L(lambda c: [c.s, _mutated(c.s, eta=-1.0)]), "setups[1].eta"),
                       B(L(lambda c: [c.s, _mutated(c.s, W0=c.W0 * NAN)]), "setups[1].W0"),
                       B(L(lambda c: [c.s, _mutated(c.s, test=c.wide.test)]), "setups[1].test")],
            "steps": INT0 + [10**9],
            "record_every": INT1,
            "test": ["clean", None, 1],
            "rho_dtype": [torch.bfloat16],
            "engine": ["w"],
        },  # fmt: skip
        [lambda c: {"test": "gaussian"}, lambda c: {"test": "none", "steps": 0}],
    ),
    Row(
        "lnfl.training.Setup",
        lambda c: {"model": c.model, "data": c.data, "test": c.test, "W0": c.W0, "eta": 0.1},
        {"model": ["m", None], "data": DATA_BAD(), "test": ["t", None, L(lambda c: c.wide.test)], "W0": W_BAD("W0"), "eta": POS},
    ),
    Row("lnfl.training.Setup.train", lambda c: {"steps": 2}, {"steps": INT0 + [10**9], "record_every": INT1},
        call=lambda c, **kw: c.s.train(**kw)),  # fmt: skip
    Row("lnfl.training.History.at", lambda c: {"step": 3}, {"step": [41, -1, 2.5, "3"]}, call=lambda c, **kw: c.hist.at(**kw)),
    Row("lnfl.training.History.t_clean_fit", lambda c: {}, call=lambda c, **kw: c.hist.t_clean_fit(**kw)),
    # ---------------------------------------------------------------------------------------------- engine
    *[
        Row(
            f"lnfl.engine.{name}",
            lambda c: {"W0": c.W0.reshape(1, 4, 16), "Z": c.Z, "X": None},
            {"W0": ["W0", L(lambda c: c.W0), L(lambda c: c.W0.reshape(1, 4, 16).half()), L(lambda c: c.W0.reshape(1, 4, 16) * NAN)],
             "Z": ["Z", L(lambda c: c.Z[..., :-1]), L(lambda c: c.Z.float()), L(lambda c: c.Z * INF)],
             "X": ["X", L(lambda c: c.Z[..., :-1]), L(lambda c: c.Z.float())]},  # fmt: skip
            [lambda c: {"X": c.Z}],
        )
        for name in ("WeightSpace", "CoefSpace")
    ],
    Row(
        "lnfl.engine.outputs",
        lambda c: {"S": c.S, "c": c.c, "j": c.j},
        {"S": ["S", L(lambda c: -c.S - 1), L(lambda c: c.S.half()), L(lambda c: c.S[0]), L(lambda c: c.S[:, :3])],
         "c": ["c", L(lambda c: c.c.double()), L(lambda c: c.c + 5), L(lambda c: c.c[:, :3])],
         "j": ["j", L(lambda c: 2 * c.j), L(lambda c: c.j[:3]), L(lambda c: c.j.float())]},  # fmt: skip
    ),
    Row(
        "lnfl.engine.coefficients",
        lambda c: {"S": c.S, "q": torch.full((1, 8), 0.01, dtype=torch.float64), "E_T": torch.ones(1, 8, 10, dtype=torch.float64), "j": c.j},
        {"S": ["S", L(lambda c: c.S * NAN)], "q": ["q", torch.zeros(1, 7, dtype=torch.float64), torch.zeros(1, 8, dtype=torch.float32)],
         "E_T": ["E_T", torch.zeros(1, 8, 9, dtype=torch.float64)], "j": [L(lambda c: -3 * c.j)]},  # fmt: skip
    ),
    Row(
        "lnfl.engine.run_gd",
        lambda c: {"space_type": _resolve("lnfl.engine.CoefSpace"), "W0s": [c.W0], "datas": [c.data], "etas": [0.1],
                   "steps": 2, "record_every": 1, "tests": [None]},  # fmt: skip
        {
            "space_type": ["coef", None, L(lambda c: _resolve("lnfl.training.train"))],
            "W0s": [B(L(lambda c: [c.W0.float()]), "W0s[0]"), B(L(lambda c: [c.W0 * NAN]), "W0s[0]"), "W", None],
            "datas": [B(["x"], "datas[0]"), B(L(lambda c: [c.wide.data]), "W0s[0]"), 3],
            "etas": [B([-1.0], "etas[0]"), B([NAN], "etas[0]"), B([0.1, 0.1], "etas")],
            "steps": INT0 + [10**9],
            "record_every": INT1,
            "tests": [B(["t"], "tests[0]"), B(L(lambda c: [c.wide.test]), "tests[0]")],
            "rho_dtype": [torch.float16],
        },
    ),
    # --------------------------------------------------------------------------------------- decomposition
    Row(
        "lnfl.decomposition.decompose",
        lambda c: {"W": c.W, "W0": c.W0, "data": c.data},
        {"W": W_BAD("W"), "W0": W_BAD("W0"),
         "data": DATA_BAD() + [L(lambda c: c.zero_mu), L(lambda c: _zero_xi(c.data)), L(lambda c: c.wide.data),
                               L(lambda c: _duplicate_xi(c.data))]},  # fmt: skip
        [lambda c: {"W": c.W0}, lambda c: {"W": c.W0 + 1e100}],
    ),
    *[
        Row(f"lnfl.decomposition.{name}", lambda c: {"rho": c.hist.rho}, {"rho": ["r", L(lambda c: c.hist.rho * NAN), L(lambda c: c.hist.rho.half())]})
        for name in ("rho_bar", "rho_under")
    ],
    Row(
        "lnfl.decomposition.noise_cross_talk",
        lambda c: {"rho": c.hist.rho, "data": c.data},
        {"rho": ["r", L(lambda c: c.hist.rho[..., :3]), L(lambda c: c.hist.rho.float()), L(lambda c: c.hist.rho * NAN)],
         "data": DATA_BAD()[:4]},  # fmt: skip
    ),
    # ---------------------------------------------------------------------------------------------- theory
    Row("lnfl.theory.snr", lambda c: {"mu_norm": 4.0, "sigma_xi": 1.0, "d": 16},
        {"mu_norm": POS + [B({"mu_norm": 1e300, "sigma_xi": 1e-300}, "mu_norm")], "sigma_xi": POS, "d": INT1},
        [lambda c: {"mu_norm": 1e150, "sigma_xi": 1e-150, "d": 1}]),  # fmt: skip
    Row("lnfl.theory.n_snr2", lambda c: {"n": 8, "mu_norm": 4.0, "sigma_xi": 1.0, "d": 16},
        {"n": INT1, "mu_norm": POS + [B({"n": 20, "mu_norm": 1e200, "d": 50}, "mu_norm")], "sigma_xi": POS, "d": INT1},
        [lambda c: {"mu_norm": 1e150}]),  # fmt: skip
    Row("lnfl.theory.t1_order", lambda c: {"n": 8, "m": 2, "eta": 0.1, "sigma_xi": 1.0, "d": 16},
        {"n": INT1, "m": INT1, "eta": POS, "sigma_xi": POS + [1e-200], "d": INT1}, [lambda c: {"sigma_xi": 1e-100}]),  # fmt: skip
    Row("lnfl.theory.growth_ratio", lambda c: {"n_snr2": 16.0, "tau": 0.2},
        {"n_snr2": POS, "tau": TAU[:-1] + [B({"tau": 0.1, "tau_plus": 0.1}, "tau")],
         "tau_plus": [B({"tau": None, "tau_plus": 0.7, "tau_minus": 0.1}, "tau_plus"), B({"tau": None, "tau_plus": 0.1}, "tau_minus")],
         "tau_minus": [B({"tau": None, "tau_plus": 0.1, "tau_minus": "x"}, "tau_minus")]},
        [lambda c: {"n_snr2": 1e308, "tau": 0.0}]),  # fmt: skip
    Row("lnfl.theory.signal_step", lambda c: {"eta": 0.1, "mu_norm": 4.0, "m": 2, "tau": 0.2},
        {"eta": POS + [B({"eta": 1e300, "mu_norm": 1e10}, "eta")], "mu_norm": POS, "m": INT1, "tau": TAU}),  # fmt: skip
    Row("lnfl.theory.memorisation_step", lambda c: {"eta": 0.1, "sigma_xi": 1.0, "d": 16, "n": 8, "m": 2},
        {"eta": POS, "sigma_xi": POS + [1e200], "d": INT1, "n": INT1, "m": INT1}),  # fmt: skip
    Row("lnfl.theory.early_stopping_error_bound", lambda c: {"d": 16, "n": 8},
        {"d": INT1, "n": INT1, "C": POS}, [lambda c: {"C": 1e-320}, lambda c: {"d": 10**400}]),  # fmt: skip
    Row("lnfl.theory.noiseless_error_bound", lambda c: {"n": 8, "mu_norm": 4.0, "sigma_xi": 1.0, "d": 16},
        {"n": INT1, "mu_norm": POS, "sigma_xi": POS, "d": INT1, "C": POS},
        [lambda c: {"mu_norm": 1e200}, lambda c: {"mu_norm": 1e-200}]),  # fmt: skip
    Row("lnfl.theory.stage2_error_lower_bound", lambda c: {"tau_plus": 0.2, "tau_minus": 0.1}, {"tau_plus": TAU, "tau_minus": TAU}),
    Row("lnfl.theory.memorisation_spread", lambda c: {"rho_bar": 0.5, "tau": 0.2, "n": 8, "d": 16},
        {"rho_bar": [-1.0, NAN, "x"], "tau": TAU, "n": INT1, "d": INT1}),  # fmt: skip
    Row("lnfl.theory.clean_error_estimate", lambda c: {"gamma": 1.0, "rho_bar": 0.5, "tau": 0.2, "n": 8, "d": 16},
        {"gamma": [NAN, "x", None], "rho_bar": [-1.0, NAN], "tau": TAU, "n": INT1, "d": INT1}),  # fmt: skip
    Row("lnfl.theory.harmful_d_over_n", lambda c: {"gamma": 1.0, "rho_bar": 0.5, "tau": 0.2, "level": 0.1},
        {"gamma": [NAN, "x", None], "rho_bar": [-1.0, NAN], "tau": TAU, "level": [0, 1.5, NAN]}),  # fmt: skip
    Row(
        "lnfl.theory.check_conditions",
        lambda c: {"n": 8, "d": 16, "m": 2, "mu_norm": 4.0, "sigma_xi": 1.0, "sigma0": 0.01, "eta": 0.1,
                   "tau_plus": 0.2, "tau_minus": 0.2},  # fmt: skip
        {"n": INT1, "d": INT1, "m": INT1, "mu_norm": POS + [1e200], "sigma_xi": POS, "sigma0": POS, "eta": POS,
         "tau_plus": TAU, "tau_minus": TAU, "n_snr2_range": [(2.0, 1.0), (0.0, 1.0), "ab", (1.0,), None]},  # fmt: skip
        [lambda c: {"n": 1, "m": 1, "d": 1, "sigma0": 1e-300}],
    ),
    # ------------------------------------------------------------------------------------------------ race
    Row(
        "lnfl.race.gamma_race",
        lambda c: {"W0": c.W0, "data": c.data, "steps": 3},
        {"W0": W_BAD("W0"), "data": DATA_BAD(), "eta": POS, "steps": INT0 + [10**9], "record_every": INT1},
        [lambda c: {"steps": 0}, lambda c: {"record_every": 5}],
    ),
    Row("lnfl.race.observed_class_mask", lambda c: {"data": c.data, "m": 2}, {"data": DATA_BAD()[:4], "m": INT1}),
    Row("lnfl.race.stage_one_growth", HD({"k": 3}), {**HD_BAD, "k": INT1 + [10**6], "hist": HIST + [L(lambda c: c.late)]}),
    # ---------------------------------------------------------------------------------------------- stages
    *[Row(f"lnfl.stages.{name}", HD(), HD_BAD) for name in (
        "true_margin", "noisy_gradient_share", "signal_pull", "memorised", "stage_one_state", "stage_one_window",
        "stage_one_breakers")],  # fmt: skip
    Row("lnfl.stages.abs_dloss", lambda c: {"hist": c.hist}, {"hist": HIST}),
    Row("lnfl.stages.t_all_noisy_fitted", lambda c: {"hist": c.hist}, {"hist": HIST}),
    Row("lnfl.stages.true_class_signal", HD(), {**HD_BAD, "reduce": ["max", 1, None]}, [HD({"reduce": "min"})]),
    Row("lnfl.stages.own_memorisation", HD(), {**HD_BAD, "reduce": ["min", 1]}, [HD({"reduce": "max"})]),
    Row("lnfl.stages.signal_beats_memorisation", HD(), {**HD_BAD, "strict": BOOL}, [HD({"strict": True})]),
    Row("lnfl.stages.stage_one_summary", HD({"sigma_xi": 1.0}), {**HD_BAD, "sigma_xi": POS}),
    Row("lnfl.stages.stage_two_summary", HD({"tau_plus": 0.25, "tau_minus": 0.25}), {**HD_BAD, "tau_plus": TAU, "tau_minus": TAU}),
    Row(
        "lnfl.stages.run_seeds",
        lambda c: {"seeds": [0], "steps": 2, "n_test": 2, "n": 8, "d": 16, "m": 2},
        {"seeds": [[], "0", [-1], None], "steps": INT0 + [10**9], "record_every": INT1, "n_test": INT1,
         "**overrides": [B({"bogus": 1}, "bogus"), B({"eta": 0}, "eta")]},  # fmt: skip
    ),
    Row(
        "lnfl.stages.run_batch",
        lambda c: {"seeds": [0, 1], "steps": 2, "n": 8, "d": 16, "m": 2},
        {"seeds": [[], "0", [-1]], "steps": INT0 + [10**9], "record_every": INT1, "test": ["x", 1], "n_test": INT1,
         "dtype": DTYPE, "rho_dtype": [torch.float16], "**overrides": [B({"bogus": 1}, "bogus"), B({"m": 0}, "m")]},  # fmt: skip
        [lambda c: {"test": "gaussian", "dtype": torch.float32, "rho_dtype": torch.float32}],
    ),
    Row("lnfl.stages.model_test_errors", lambda c: {"runs": c.runs}, {"runs": [[], "r", [("a", "b")], None]}),
    Row("lnfl.stages.level_crossing", lambda c: {"x": [1.0, 2.0, 4.0], "y": [1.0, 0.5, 0.1], "level": 0.3},
        {"x": [[1.0], [1.0, NAN, 2.0], [2.0, 1.0, 3.0], [0.0, 1.0, 2.0], "x"], "y": [[1.0, -1.0, 0.0], [1.0, 2.0], "y"],
         "level": POS}),  # fmt: skip
    Row("lnfl.stages.spread", lambda c: {"curves": [c.hist.loss, c.late.loss.repeat(9)[:41]]},
        {"curves": ["c", [], None, L(lambda c: [c.hist.loss, "x"]), L(lambda c: [c.hist.loss, c.hist.loss[:-1]]),
                    L(lambda c: [c.hist.loss, c.hist.loss * NAN]), L(lambda c: c.hist.loss.half())]},
        [lambda c: {"curves": c.hist.gamma}]),  # fmt: skip
    Row("lnfl.stages.stitch", lambda c: {"early": c.hist, "late": c.late},
        {"early": HIST, "late": HIST + [L(lambda c: c.other_hist)]}),  # fmt: skip
    Row(
        "lnfl.stages.sweep_d",
        lambda c: {"ds": [16], "seeds": [0], "horizon": 0.1, "n_test": 2, "n": 8, "m": 2},
        {"ds": [[0], "16", [], None], "seeds": [[-1], "0"], "horizon": POS, "n_test": INT1,
         "**overrides": [B({"bogus": 1}, "bogus")]},  # fmt: skip
    ),
    Row("lnfl.stages.markdown_table", lambda c: {"header": ["a", "b"], "rows": [[1, 0.25], [None, "x"]]},
        {"header": ["ab", None, [1, 2]], "rows": [[[1]], None, "r"], "digits": [-1, 1.5, "3"]}),  # fmt: skip
    # ------------------------------------------------------------------------------------------- selection
    Row("lnfl.selection.log2_selection", lambda c: {"losses": c.losses}, {"losses": LOSSES}),
    Row("lnfl.selection.small_loss_selection", lambda c: {"losses": c.losses, "keep_fraction": 0.75},
        {"losses": LOSSES, "keep_fraction": [0, 1.5, NAN, "x"]}, [lambda c: {"keep_fraction": 1e-9}]),  # fmt: skip
    Row("lnfl.selection.precision_recall", lambda c: {"selected": c.sel, "clean": c.data.clean},
        {"selected": ["s", L(lambda c: c.sel.double()), L(lambda c: c.sel[:3])],
         "clean": ["c", L(lambda c: c.data.clean.int()), L(lambda c: c.data.clean[:3])]}),  # fmt: skip
    Row("lnfl.selection.perfect_separation", lambda c: {"losses": c.losses, "clean": c.data.clean},
        {"losses": LOSSES, "clean": [L(lambda c: c.data.clean[:3]), None]}),  # fmt: skip
    Row("lnfl.selection.weights_at", HD({"index": 3}), {**HD_BAD, "index": [41, -42, 2.5, "3", None]},
        [HD({"index": -1})]),  # fmt: skip
    Row("lnfl.selection.outputs_over_time", lambda c: {"hist": c.hist, "data": c.data, "other": c.test},
        {**HD_BAD, "other": ["o", None, L(lambda c: c.wide.test)], "chunk": INT1}, [lambda c: {"hist": c.hist, "data": c.data, "other": c.test, "chunk": 1}]),  # fmt: skip
    Row("lnfl.selection.accuracy_over_time", lambda c: {"hist": c.hist, "data": c.data, "other": c.test},
        {**HD_BAD, "other": ["o", L(lambda c: c.wide.test)], "labels": ["clean", None]}),  # fmt: skip
    Row("lnfl.selection.early_stopping_index", lambda c: {"val_acc": c.hist.test_acc},
        {"val_acc": ["v", L(lambda c: c.hist.test_acc[None]), L(lambda c: c.hist.test_acc * NAN), L(lambda c: c.hist.test_acc + 1),
                     torch.zeros(0, dtype=torch.float64)], "tolerance": [-0.1, 1.5, NAN, "0"]}),  # fmt: skip
    Row("lnfl.selection.subset", lambda c: {"data": c.data, "keep": c.sel},
        {"data": DATA_BAD()[:4], "keep": ["k", L(lambda c: c.sel.int()), L(lambda c: c.sel[:3]), L(lambda c: c.sel & False)]}),  # fmt: skip
    Row("lnfl.selection.select_then_retrain", lambda c: {"W0": c.W0, "data": c.data, "keep": c.data.clean, "steps": 2},
        {"W0": W_BAD("W0"), "data": DATA_BAD(), "keep": ["k", L(lambda c: c.sel[:3])], "eta": POS, "steps": INT0 + [10**9],
         "record_every": INT1, "test": ["t", L(lambda c: c.wide.test)]}),  # fmt: skip
    Row("lnfl.selection.stopping_vs_window", lambda c: {"hist": c.hist, "data": c.data, "val_acc": c.hist.test_acc},
        {**HD_BAD, "val_acc": ["v", L(lambda c: c.hist.test_acc[:3]), L(lambda c: c.hist.test_acc * NAN)],
         "tolerance": [-0.1, NAN]}),  # fmt: skip
    # ---------------------------------------------------------------------------------------------- beyond
    Row(
        "lnfl.beyond.train_sgd",
        lambda c: {"W0": c.W0, "data": c.data, "epochs": 2, "batch_size": 3, "test": c.test},
        {"W0": W_BAD("W0"), "data": DATA_BAD() + [L(lambda c: c.zero_mu)], "eta": POS, "epochs": INT0 + [10**9],
         "batch_size": INT1 + [9], "record_every": INT1, "test": ["t", L(lambda c: c.wide.test), L(lambda c: c.mc)],
         "seed": SEED},  # fmt: skip
        [lambda c: {"epochs": 0}, lambda c: {"batch_size": 8}, lambda c: {"batch_size": 1, "epochs": 1}],
    ),
    Row(
        "lnfl.beyond.instance_dependent_flips",
        lambda c: {"data": c.data, "tau": 0.25},
        {"data": DATA_BAD()[:4], "tau": TAU, "score": ["size", 3, L(lambda c: c.data.y[:3]), L(lambda c: c.data.y * NAN)],
         "sharpness": [-1.0, NAN, "x"], "seed": SEED},  # fmt: skip
        [lambda c: {"score": "margin", "sharpness": 0.0}, lambda c: {"score": c.data.xi[:, 0], "sharpness": 1e300}],
    ),
    Row("lnfl.beyond.class_accuracy", lambda c: {"W": c.W, "data": c.data}, {"W": W_BAD("W"), "data": DATA_BAD()}),
    Row(
        "lnfl.beyond.MultiClassData",
        lambda c: {"mu": c.mc.mu, "xi": c.mc.xi, "y": c.mc.y, "y_obs": c.mc.y_obs},
        {"mu": ["mu", L(lambda c: c.mc.mu[:1]), L(lambda c: c.mc.mu.half()), L(lambda c: c.mc.mu * NAN), L(lambda c: c.mc.mu[0])],
         "xi": ["xi", L(lambda c: c.mc.xi[:, :3]), L(lambda c: c.mc.xi.float()), L(lambda c: c.mc.xi * INF)],
         "y": ["y", L(lambda c: c.mc.y + 3), L(lambda c: c.mc.y.double()), L(lambda c: c.mc.y[:3])],
         "y_obs": [L(lambda c: -c.mc.y_obs - 1), None]},  # fmt: skip
    ),
    Row("lnfl.beyond.multiclass_output", lambda c: {"W": c.Wm, "data": c.mc},
        {"W": ["W", L(lambda c: c.Wm[:2]), L(lambda c: c.Wm.float()), L(lambda c: c.Wm * NAN), L(lambda c: c.Wm.numpy())],
         "data": ["d", L(lambda c: c.data)]}),  # fmt: skip
    Row(
        "lnfl.beyond.sample_multiclass",
        lambda c: {"K": 3, "n": 8, "d": 16, "mu_norm": 4.0},
        {"K": INT1 + [1, 17], "n": INT1, "d": INT1, "mu_norm": POS, "sigma_xi": POS, "tau": [-0.1, 0.7, NAN],
         "seed": SEED, "dtype": DTYPE},  # fmt: skip
        [lambda c: {"K": 16, "tau": 0.9, "dtype": torch.float32}],
    ),
    Row(
        "lnfl.beyond.train_multiclass",
        lambda c: {"W0": c.Wm, "data": c.mc, "steps": 3, "test": c.mc},
        {"W0": ["W0", None, L(lambda c: c.Wm * NAN), L(lambda c: c.Wm.numpy()), L(lambda c: c.Wm[:2]), L(lambda c: c.Wm.half())],
         "data": ["d", None, L(lambda c: c.data)], "eta": POS, "steps": INT0 + [10**9], "record_every": INT1,
         "test": ["t", L(lambda c: c.data)]},  # fmt: skip
        [lambda c: {"steps": 0}, lambda c: {"W0": c.Wm.clone().requires_grad_(True)}],
    ),
    Row("lnfl.beyond.memorisation_time", lambda c: {"hist": c.hist, "after": 18},
        {"hist": ["h", None, L(lambda c: c.s)], "after": INT0, "level": [0, 1.5, NAN, "x"]}, [lambda c: {"hist": c.mch, "after": 0}]),  # fmt: skip
    Row("lnfl.beyond.stage_clocks", lambda c: {"hist": c.hist, "data": c.data},
        {"hist": ["h", None], "data": ["d", L(lambda c: c.test)], "level": [0, 1.5, NAN]},
        [lambda c: {"hist": c.mch, "data": None}]),  # fmt: skip
    Row("lnfl.beyond.multiclass_stage_one_window", lambda c: {"hist": c.mch}, {"hist": ["h", None, L(lambda c: c.hist)]}),
    Row("lnfl.beyond.train_multiclass_batch", lambda c: {"W0s": [c.Wm, c.Wm], "datas": [c.mc, c.mc], "steps": 2, "tests": [c.mc, c.mc]},
        {"W0s": ["w", B(L(lambda c: [c.Wm * NAN, c.Wm]), "W0s[0]"), B(L(lambda c: [c.Wm, c.Wm[:2]]), "W0s[1]")],
         "datas": [B(L(lambda c: [c.data, c.mc]), "datas[0]"), B(L(lambda c: [c.mc]), "datas")],
         "eta": POS, "steps": INT0, "record_every": INT1,
         "tests": [B(["t", "t"], "tests[0]"), B(L(lambda c: [c.mc]), "tests")]}),  # fmt: skip
    Row("lnfl.beyond.train_sgd_batch", lambda c: {"setups": [c.s, c.s], "epochs": 1, "batch_size": 4},
        {"setups": [[], "s", B(L(lambda c: [c.s, _mutated(c.s, eta=-1.0)]), "setups[1].eta")], "epochs": INT0,
         "batch_size": INT1 + [9], "record_every": INT1, "seeds": [[-1, 0], [0], "0"], "test": ["gaussian", 1],
         "rho_dtype": [torch.float16]}),  # fmt: skip
    # -------------------------------------------------------------------------------------------- realdata
    Row(
        "lnfl.realdata.load_digits_pair",
        lambda c: {},
        {"classes": [(4, 4), (4, 10), (4,), "49", None], "tau_plus": TAU, "tau_minus": [0.5, "x"],
         "test_fraction": [0.0, 1.0, 0.001, NAN], "seed": SEED, "standardize": BOOL, "dtype": DTYPE},  # fmt: skip
        [lambda c: {"tau_plus": 0.0, "dtype": torch.float64, "standardize": False}],
    ),
    *[
        Row(f"lnfl.realdata.{name}", lambda c: {"image_shape": (1, 8, 8), "channels": 2},
            {"image_shape": [(8, 8), (1, 0, 8), "188", None], "channels": INT1, "dtype": DTYPE} | ({"seed": SEED} if name == "small_cnn" else {}))  # fmt: skip
        for name in ("SmallCNN", "small_cnn")
    ],
    *[
        Row(f"lnfl.realdata.{name}", lambda c: {"image_shape": (3, 8, 8), "widths": (2, 2)},
            {"image_shape": [(8, 8), (3, 6, 6), None], "widths": [(), (2, 0), "22", None], "convs_per_block": INT1,
             "dtype": DTYPE} | ({"seed": SEED} if name == "vgg_small" else {}))  # fmt: skip
        for name in ("VGGSmall", "vgg_small")
    ],
    Row(
        "lnfl.realdata.ImageData",
        lambda c: {"x": c.pair.train.x, "y": c.pair.train.y, "y_obs": c.pair.train.y_obs},
        {"x": ["x", L(lambda c: c.pair.train.x[:, 0]), L(lambda c: c.pair.train.x.half()), L(lambda c: c.pair.train.x * NAN)],
         "y": [L(lambda c: c.pair.train.y[:3]), L(lambda c: 0 * c.pair.train.y), "y"],
         "y_obs": [L(lambda c: c.pair.train.y_obs[:3]), None]},  # fmt: skip
    ),
    Row(
        "lnfl.realdata.ImagePair",
        lambda c: dataclasses.asdict(c.pair) | {"train": c.pair.train, "test": c.pair.test},
        {"train": ["t", None, L(lambda c: c.data)], "test": [L(lambda c: _images(c.pair.test, 3))], "classes": [(4,), "49", (4.0, 9)],
         "tau_plus": TAU, "tau_minus": TAU, "seed": SEED, "name": [None, 3]},  # fmt: skip
    ),
    Row(
        "lnfl.realdata.train_classifier",
        lambda c: {"net": c.net, "data": c.pair, "epochs": 2},
        {"net": ["n", None, L(lambda c: c.W0)], "data": ["d", L(lambda c: c.pair.train), L(lambda c: c.data)],
         "lr": POS, "epochs": INT0 + [10**12], "batch_size": [0, 13, 2.5, "4"], "record_every": INT1, "seed": SEED,
         "threads": [0, 1.5, "2"], "val": ["v", L(lambda c: c.pair), L(lambda c: _images(c.pair.test, 3))],
         "device": DEVICE, "eval_batch": INT1},  # fmt: skip
        [lambda c: {"batch_size": 5, "val": c.pair.test, "eval_batch": 1}, lambda c: {"epochs": 0, "threads": None}],
    ),
    Row("lnfl.realdata.split_validation", lambda c: {"data": c.pair},
        {"data": ["d", L(lambda c: c.pair.train)], "fraction": [0.0, 1.0, 0.01, NAN], "seed": SEED}),  # fmt: skip
    Row(
        "lnfl.realdata.run_digits",
        lambda c: {"epochs": 1, "channels": 2},
        {"seed": SEED, "record_every": INT1, "batch_size": [0, 2.5, 10**6],
         "**overrides": [B({"bogus": 1}, "bogus"), B({"lr": -1.0}, "lr"), B({"epochs": -1}, "epochs"),
                         B({"channels": 0}, "channels"), B({"classes": (4, 4)}, "classes"), B({"tau_plus": 0.5}, "tau_plus")]},  # fmt: skip
    ),
    Row("lnfl.realdata.default_cifar10_path", lambda c: {}),
    Row("lnfl.realdata.validation_ceiling", lambda c: {"val": c.pair.train, "error": 0.1},
        {"val": ["v", None, L(lambda c: c.pair)], "error": [-0.1, 1.5, NAN, "x"], "alpha": [0, 1, NAN], "looks": INT1},
        [lambda c: {"error": 0.0}, lambda c: {"error": 1.0, "alpha": 1e-300}]),  # fmt: skip
    *[
        Row(f"lnfl.realdata.{name}", lambda c: {"path": c.cifar}, {"path": [3, b"x", ""]}, [lambda c: {"path": c.cifar / "missing"}])
        for name in ("find_cifar10", "cifar10_available")
    ],
    Row(
        "lnfl.realdata.download_cifar10",
        None,
        {"dest": [3, b"x", ""], "url": ["", 5, None], "md5": ["abc", 5]},
        no_valid="it fetches from the network: see test_download_* below, with the fetch replaced",
    ),
    Row(
        "lnfl.realdata.load_cifar10_pair",
        lambda c: {"path": c.cifar},
        {"classes": [(0, 0), (0, 10), None], "tau_plus": TAU, "tau_minus": [0.5], "path": [3, b"x"],
         "n_per_class": [0, 11, 2.5], "seed": SEED, "standardize": BOOL, "dtype": DTYPE},  # fmt: skip
        [lambda c: {"path": c.cifar, "n_per_class": 1, "standardize": False, "tau_plus": 0.0}],
    ),
    Row(
        "lnfl.realdata.run_cifar10",
        lambda c: {"path": c.cifar, "n_per_class": 5, "widths": (2, 2, 2), "epochs": 1, "batch_size": 4},
        {"seed": SEED, "path": [3], "device": DEVICE, "record_every": INT1, "val_fraction": [0.0, 1.0, NAN, "x"],
         "**overrides": [B({"bogus": 1}, "bogus"), B({"lr": 0}, "lr"), B({"epochs": -1}, "epochs"), B({"batch_size": 0}, "batch_size"),
                         B({"widths": ()}, "widths"), B({"n_per_class": 0}, "n_per_class")]},  # fmt: skip
    ),
    # --------------------------------------------------------------------------------------------- regimes
    Row("lnfl.regimes.loglog_slope", lambda c: {"x": [1.0, 2.0, 4.0], "y": [3.0, 6.0, 12.0]},
        {"x": [[1.0], [1.0, 0.0, 2.0], [1.0, NAN, 2.0], B([2.0, 2.0, 2.0], "x"), "x", None],
         "y": [[1.0, 0.0, 2.0], [1.0, 2.0], "y", None]},
        [lambda c: {"x": torch.tensor([1e-300, 1e300]), "y": [1e300, 1e-300]}]),  # fmt: skip
    Row("lnfl.regimes.t_gamma", lambda c: {"hist": c.hist}, {"hist": HIST, "level": POS}, [lambda c: {"level": 1e300}]),
    Row("lnfl.regimes.clean_fit_order", lambda c: {"n": 8, "m": 2, "eta": 0.1, "sigma_xi": 1.0, "d": 16, "sigma0": 0.01},
        {"n": INT1, "m": INT1, "eta": POS, "sigma_xi": POS, "d": INT1, "sigma0": POS + [B({"sigma0": 1e300, "eta": 1e-300}, "sigma0")]}),  # fmt: skip
    Row("lnfl.regimes.stage_one_clocks", HD(), HD_BAD),
    Row("lnfl.regimes.best_noisy_true", lambda c: {"hist": c.hist}, {"hist": HIST}),
    *[
        Row(f"lnfl.regimes.{name}", lambda c: {"param": "eta", "values": [0.1], "seeds": [0], "horizon": 0.5, "n": 8, "d": 16, "m": 2},
            {"param": ["tau", None], "values": [[0], [], "v", [NAN], None], "seeds": [[-1], "0", []], "horizon": POS,
             "dtype": DTYPE, "**overrides": [B({"bogus": 1}, "bogus"), B({"eta": 0.2}, "eta"), B({"m": 0}, "m")]},
            [lambda c: {"param": "sigma0", "values": [0.01, 0.02]}])  # fmt: skip
        for name in ("t1_sweep", "clean_fit_sweep")
    ],
    Row("lnfl.regimes.slope_interval", lambda c: {"values": [1.0, 2.0, 4.0], "times": torch.tensor([[4.0, 5.0], [2.0, 2.5], [1.0, 1.5]]), "n_boot": 50},
        {"values": [[1.0], [2.0, 2.0, 2.0], "v", [1.0, -2.0, 4.0]],
         "times": ["t", torch.ones(2, 2), torch.tensor([[1.0, 2.0], [-1.0, 1.0], [1.0, 1.0]]), torch.tensor([[1.0, 2.0], [NAN, NAN], [1.0, 1.0]])],
         "level": [0, 1, NAN], "n_boot": INT1, "seed": SEED}),  # fmt: skip
    Row(
        "lnfl.regimes.phase_diagram",
        lambda c: {"n_snr2s": [4.0], "taus": [0.3], "seeds": [0], "horizon": 0.3, "steps": 2, "n": 8, "d": 16, "m": 2},
        {"n_snr2s": [[0.0], "x", []], "taus": [[0.5], None], "seeds": [[-1]], "late_seeds": [[-1], "0"], "horizon": POS,
         "steps": INT1, "dtype": DTYPE, "**overrides": [B({"bogus": 1}, "bogus"), B({"tau_plus": 0.1}, "tau_plus")]},  # fmt: skip
    ),
    Row("lnfl.regimes.clean_error_at", lambda c: {"setups": [c.s], "hists": [c.hist], "steps": [3]},
        {"setups": ["s", [None]], "hists": [["h"], L(lambda c: [c.hist, c.hist])], "steps": [[-1], ["3"], "3"]},
        [lambda c: {"steps": [18.0]}]),  # fmt: skip
    Row(
        "lnfl.regimes.memorisation_vs_d",
        lambda c: {"ds": [16], "seeds": [0], "steps": 2, "early_order": 2.0, "horizon": 1.0, "n_val": 2, "n": 8, "m": 2},
        {"ds": [[8], [0], "d"], "seeds": [[-1]], "steps": INT1, "order": [0, NAN, "1"], "early_order": POS, "horizon": POS,
         "n_val": [-1, 1.5], "init_scale": [0, NAN], "early": BOOL, "dtype": DTYPE,
         "**overrides": [B({"bogus": 1}, "bogus"), B({"d": 20}, "d")]},  # fmt: skip
        [lambda c: {"early": False}],
    ),
    Row("lnfl.regimes.curve_discrepancy", lambda c: {"xs": [[1.0, 2.0], [1.0, 3.0]], "ys": [[1.0, 0.5], [1.0, 0.4]]},
        {"xs": ["ab", [[1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]], [[1.0, 2.0], [0.0, 1.0]]],
         "ys": [[[1.0, 0.5]], [[1.0, -0.5], [1.0, 0.4]], [["a", "b"], [1.0, 0.4]]], "floor": POS}),  # fmt: skip
    Row("lnfl.regimes.collapse",
        lambda c: {"xs": [[1.0, 2.0], [1.0, 3.0]], "samples": [[[1.0, 1.1], [0.5, 0.6]], [[1.0, 0.9], [0.4, 0.5]]], "n_boot": 20},
        {"xs": ["ab", [[1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]]], "samples": ["s", [[[1.0]], [[2.0]]], [["a"], ["b"]]],
         "floor": POS, "level": [0, 1, NAN], "n_boot": INT1, "seed": SEED}),  # fmt: skip
    # ----------------------------------------------------------------------------------------------- bench
    Row("lnfl.bench.PlainCNN", lambda c: {"W0": c.W0}, {"W0": ["W", None, L(lambda c: c.W0[0]), L(lambda c: c.W0 * NAN)]}),
    Row("lnfl.bench.autograd_gd", None, {"W0": W_BAD("W0"), "data": DATA_BAD(), "eta": POS, "steps": INT0},
        base=lambda c: {"W0": c.W0, "data": c.data, "eta": 0.1, "steps": 2}, no_valid="its first call imports torch.optim (seconds of CPU); tests/test_engine.py runs it"),  # fmt: skip
    Row("lnfl.bench.gemm_gflops", lambda c: {"N": 8}, {"N": INT1, "dtype": DTYPE}),
    Row("lnfl.bench.bench_single", None, {"steps": INT1, "reps": INT1, "engine": ["x", 1]},
        base=lambda c: {"steps": 1, "reps": 1}, no_valid="its first call imports torch.optim (seconds of CPU); tests/test_engine.py runs it"),  # fmt: skip
    Row("lnfl.bench.bench_batched", lambda c: {"K": 1, "steps": 1, "reps": 1}, {"K": INT1, "steps": INT1, "reps": INT1}),
    Row("lnfl.bench.bench_engine", lambda c: {"weight_steps": 1, "coef_steps": 1, "reps": 1, "d": 120},
        {"weight_steps": INT1, "coef_steps": INT1, "reps": INT1, "d": INT1}),  # fmt: skip
    Row("lnfl.bench.main", None, {"argv": [3, "--quick", [1]]}, no_valid="the whole benchmark takes tens of seconds"),
    Row("lnfl.bench.bench_explorers", None, {"quick": [1, "yes", None]}, no_valid="times the explorers (tens of seconds)"),
    Row("lnfl.bench.bench_notebook", None, {"path": [3, "missing.ipynb", "README.md"], "timeout": POS},
        no_valid="executes a notebook", base=lambda c: {"path": _resolve("lnfl.bench.notebooks")()[0]}),  # fmt: skip
    Row("lnfl.bench.bench_chapters", None, {"paths": ["p", ["missing.ipynb"], 3]}, no_valid="executes every notebook"),
    Row("lnfl.bench.notebooks", lambda c: {}),
    Row("lnfl.bench.markdown", None, {"r": [None, "r", {"a": 1}]}, no_valid="needs a whole benchmark result"),
    Row("lnfl.bench.update_readme", None, {"r": [None, {"a": 1}]}, no_valid="rewrites the README",
        free={"path": "checked after r, and a valid r is a whole benchmark result"}),  # fmt: skip
    # -------------------------------------------------------------------------------------------- plotting
    Row("lnfl.plotting.use_book_style", lambda c: {}, call=lambda c, **kw: _in_rc(_resolve("lnfl.plotting.use_book_style"))),
    Row("lnfl.plotting.mark_stage_boundary", lambda c: {"ax": _ax(), "t": 18},
        {"ax": [None, "ax", L(lambda c: _axes(2))], "t": [None, NAN, "3", L(lambda c: c.hist.t)], "label": [3]},
        [lambda c: {"ax": _ax(), "t": torch.tensor(5)}, lambda c: {"ax": _ax(), "t": 2.5, "label": None}]),  # fmt: skip
    Row("lnfl.plotting.mark_stage_one", lambda c: {"ax": _ax(), "start": 1, "end": 18},
        {"ax": [None, L(lambda c: _axes(2))], "start": [None, NAN, B({"start": 20}, "start")], "end": [INF, "x"],
         "label": [3], "end_label": [[1]]}),  # fmt: skip
    Row("lnfl.plotting.new_figure", lambda c: {"ncols": 2, "width": 6.0},
        {"ncols": INT1, "nrows": INT1, "width": [0, -1.0, NAN, "6"], "height": [0, INF]},
        free={"kw": "passed on to matplotlib's plt.subplots, which checks it"}),  # fmt: skip
]  # fmt: skip


def _mutated(s: object, **changes: object) -> object:
    """A copy of a Setup with fields changed after construction (bypassing Setup's own checks)."""
    import copy

    t = copy.copy(s)
    for k, v in changes.items():
        object.__setattr__(t, k, v)
    return t


def _zero_xi(data: object) -> object:
    from lnfl.data import Dataset

    xi = data.xi.clone()
    xi[3] = 0.0
    return Dataset(data.mu, xi, data.y, data.y_obs)


def _duplicate_xi(data: object) -> object:
    from lnfl.data import Dataset

    xi = data.xi.clone()
    xi[3] = xi[2]
    return Dataset(data.mu, xi, data.y, data.y_obs)


def _images(images: object, channels: int) -> object:
    from lnfl.realdata import ImageData

    return ImageData(images.x.repeat(1, channels, 1, 1), images.y, images.y_obs)


def _ax() -> object:
    import matplotlib.pyplot as plt

    plt.close("all")
    return plt.subplots()[1]


def _axes(k: int) -> object:
    import matplotlib.pyplot as plt

    plt.close("all")
    return plt.subplots(1, k)[1]


def _in_rc(fn: Callable[[], object]) -> object:
    with matplotlib.rc_context():
        return fn()


# ------------------------------------------------------------------------------------------------ coverage


def _public_modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(lnfl.__path__)
        if not m.name.startswith("_") and m.name not in EXEMPT_MODULES
    )


def _entry_points() -> list[str]:
    """Every callable in the ``__all__`` of every public module, as ``lnfl.module.name``."""
    names = []
    for mod_name in _public_modules():
        mod = importlib.import_module(f"lnfl.{mod_name}")
        for name in getattr(mod, "__all__", ()):
            if callable(getattr(mod, name)) and f"lnfl.{mod_name}.{name}" not in NOT_ENTRY_POINTS:
                names.append(f"lnfl.{mod_name}.{name}")
    return names


ROW_BY_TARGET = {r.target: r for r in ROWS}


def test_every_public_callable_has_a_row():
    missing = [t for t in _entry_points() if t not in ROW_BY_TARGET]
    assert not missing, f"public callables without a row in tests/test_contract.py ROWS: {missing}"


def test_no_stale_rows():
    """Every row names a callable that exists, every exemption a public name, and no target has two rows."""
    assert len(ROW_BY_TARGET) == len(ROWS), "two rows for one target"
    for r in ROWS:
        assert callable(r.fn()), r.target
    for name in NOT_ENTRY_POINTS:
        mod, attr = name.rsplit(".", 1)
        assert attr in importlib.import_module(mod).__all__, f"{name} is exempt but not public"


def _params(row: Row) -> list[str]:
    sig = inspect.signature(row.fn())
    out = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        out.append(f"**{p.name}" if p.kind is p.VAR_KEYWORD and p.name != "kw" else p.name)
    return out


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.target.removeprefix("lnfl."))
def test_every_argument_has_invalid_values(row):
    missing = [p for p in _params(row) if p not in row.bad and p not in row.free]
    assert not missing, f"{row.target}: arguments without invalid values in the table: {missing}"
    unknown = [p for p in row.bad if p not in _params(row)]
    assert not unknown, f"{row.target}: the table lists arguments the function does not have: {unknown}"


# --------------------------------------------------------------------------------------- finite results


#: Fields documented as NaN where there is nothing to measure: no test or validation set, no noisy sample, an
#: event (a Stage I window, the clean-fit time, early stopping) that does not happen within the run.
NOT_MEASURED = {"test_acc", "test_acc_noisy_labels", "val_acc", "train_acc_noisy", "noisy_true_acc",
                "mean_abs_dloss_noisy", "t1", "start", "t_clean_fit", "t_es", "best_noisy_true", "test_error_t1",
                "test_error_es"}  # fmt: skip


def _finite(obj: object, where: str = "result") -> None:
    """Every float in ``obj`` (tensors, numbers, dataclasses, dicts, sequences) is finite, except the fields
    documented as NaN when there is nothing to measure (:data:`NOT_MEASURED`)."""
    if re.search(r"(\.|\[')(" + "|".join(NOT_MEASURED) + r")('\])?$", where):
        return
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            assert bool(torch.isfinite(obj).all()), f"{where} holds NaN or inf"
        assert not obj.requires_grad or where == "result", f"{where} keeps an autograd graph"
    elif isinstance(obj, float):
        assert math.isfinite(obj), f"{where} = {obj}"
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _finite(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for k, v in enumerate(obj):
            _finite(v, f"{where}[{k}]")


def _case_id(row: Row, k: int) -> str:
    return f"{row.target.removeprefix('lnfl.')}-{k}"


VALID = [(r, None) for r in ROWS if r.valid is not None] + [(r, e) for r in ROWS for e in r.edges]


@pytest.mark.parametrize("row, edge", VALID, ids=[_case_id(r, k) for k, (r, _) in enumerate(VALID)])
def test_valid_call_gives_finite_result(row, edge):
    c = C()
    kw = {**row.valid(c), **(edge(c) if edge else {})}
    _finite(row(c, **kw))


# ------------------------------------------------------------------------------------------ invalid values


def _invalid_cases() -> list[tuple[Row, str, object]]:
    return [(r, arg, v) for r in ROWS for arg, values in r.bad.items() for v in values]


INVALID = _invalid_cases()


def _id(case: tuple[Row, str, object]) -> str:
    row, arg, v = case
    v = v.value if isinstance(v, B) else v
    text = "lazy" if isinstance(v, L) else repr(v)[:20]
    return f"{row.target.removeprefix('lnfl.')}-{arg}-{text}"


@pytest.mark.parametrize("row, arg, value", INVALID, ids=[f"{_id(x)}-{k}" for k, x in enumerate(INVALID)])
def test_invalid_value_names_argument(row, arg, value):
    """TypeError or ValueError naming the argument (or the path given), raised before any work is done."""
    c = C()
    blame = value.blame if isinstance(value, B) else arg.removeprefix("**")
    v = _value(value.value if isinstance(value, B) else value, c)
    kw = row.valid(c) if row.valid is not None else row.base(c) if row.base is not None else {}
    if arg.startswith("**") or (isinstance(value, B) and isinstance(v, dict)):
        kw = {**kw, **v}
    else:
        kw = {**kw, arg: v}
    t0 = time.perf_counter()
    with pytest.raises((TypeError, ValueError)) as err:
        row(c, **kw)
    named = re.search(rf"(?<![\w]){re.escape(blame)}(?!\w)", str(err.value))
    assert named, f"{row.target}({arg}=...) raised {err.value!r}, which does not name {blame!r}"
    assert time.perf_counter() - t0 < 5, "an invalid argument must be refused before the work starts"


# ------------------------------------------------------------------------------------------------ divergence


def _diverged(fn: Callable[[], object]) -> str:
    from lnfl.training import TrainingDivergedError

    with pytest.raises(TrainingDivergedError) as err:
        fn()
    return str(err.value)


def test_divergence_is_the_same_in_both_engines_and_names_step_and_cause():
    from lnfl.training import setup, train

    s = setup(seed=3, n_test=5, d=60, n=30, m=5, dtype=torch.float32)
    msgs = {e: _diverged(lambda e=e: train(s.W0, s.data, eta=1e38, steps=20, engine=e)) for e in ("weights", "coef")}
    assert msgs["weights"] == msgs["coef"]
    assert "at step 1:" in msgs["coef"] and "overflowed torch.float32 with eta=1e+38" in msgs["coef"]
    suggested = float(re.search(r"e\.g\. eta=(\S+)$", msgs["coef"]).group(1))
    assert suggested <= 0.2, "the suggested step size must be one that fits the inputs, not eta/10"
    train(s.W0, s.data, eta=suggested, steps=20, engine="coef")  # and it does run


def test_inputs_too_large_for_the_dtype_blame_the_inputs_not_eta():
    from lnfl.data import SignalNoiseModel
    from lnfl.model import init_weights
    from lnfl.training import train

    data, W0 = SignalNoiseModel(16, 1e200).sample(8), init_weights(2, 16)
    msgs = {e: _diverged(lambda e=e: train(W0, data, steps=5, engine=e)) for e in ("weights", "coef")}
    assert msgs["weights"] == msgs["coef"]
    m = msgs["coef"]
    assert (
        "step 0" in m and "data.mu" in m and "too large for torch.float64" in m and "smaller step size cannot help" in m
    )
    assert "e.g. eta" not in m
    # W⁽⁰⁾ so large that the very first output overflows: also an input problem at step 0
    s_data = SignalNoiseModel(16, 4.0).sample(8)
    m0 = {
        e: _diverged(lambda e=e: train(W0 / W0.abs().max() * 1e308, s_data, steps=5, engine=e))
        for e in ("weights", "coef")
    }
    assert m0["weights"] == m0["coef"] and "step 0" in m0["coef"] and "W0" in m0["coef"]


def test_every_trainer_raises_training_diverged_error():
    from lnfl.beyond import train_multiclass, train_sgd
    from lnfl.race import gamma_race

    c = C()
    for m in (
        _diverged(lambda: gamma_race(c.W0, c.data, eta=1e308, steps=5)),
        _diverged(lambda: train_sgd(c.W0, c.data, eta=1e308, epochs=3, batch_size=4)),
        _diverged(lambda: train_multiclass(c.Wm, c.mc, eta=1e308, steps=5)),
        _diverged(lambda: gamma_race(c.W0, c.big_mu.to(dtype=torch.float64), steps=5)),
        _diverged(lambda: train_sgd(c.W0, c.big_mu, epochs=1, batch_size=4)),
    ):
        assert re.search(r"diverged at (step|update) \d+", m), m
        assert "try a smaller step size, e.g. eta=" in m or "cannot help" in m, m


def test_nan_w0_is_an_argument_error_naming_w0_everywhere():
    from lnfl.beyond import train_multiclass, train_sgd
    from lnfl.race import gamma_race
    from lnfl.training import train

    c = C()
    for call in (
        lambda: train(c.W0 * NAN, c.data),
        lambda: gamma_race(c.W0 * NAN, c.data),
        lambda: train_sgd(c.W0 * NAN, c.data),
        lambda: train_multiclass(c.Wm * NAN, c.mc),
    ):
        with pytest.raises(ValueError, match=r"^W0 must contain only finite values"):
            call()


def test_wrong_argument_is_never_blamed():
    from lnfl.beyond import train_multiclass
    from lnfl.decomposition import decompose
    from lnfl.training import train

    c = C()
    with pytest.raises(ValueError, match=r"^W0 and data must share dtype"):
        decompose(c.W, c.W0.float(), c.data)
    with pytest.raises(ValueError, match=r"^test must have the training data's d = 16"):
        train(c.W0, c.data, test=c.wide.test)
    with pytest.raises(TypeError, match=r"^W0 must be a torch.Tensor of shape \(3, m, 16\)"):
        train_multiclass(c.Wm.numpy(), c.mc)


# ------------------------------------------------------------------------------------ nothing silently wrong


def test_half_precision_and_integers_are_refused_with_the_reason():
    from lnfl.beyond import sample_multiclass
    from lnfl.data import Dataset

    c = C()
    for dt in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match="half precision is refused"):
            Dataset(c.data.mu.to(dt), c.data.xi.to(dt), c.data.y, c.data.y_obs)
    with pytest.raises(TypeError, match="integer or boolean tensor would truncate"):
        Dataset(c.data.mu.long(), c.data.xi.long(), c.data.y, c.data.y_obs)
    with pytest.raises(TypeError, match="dtype"):
        sample_multiclass(3, 8, 16, 4.0, dtype=torch.int64)


def test_requires_grad_inputs_are_detached():
    from lnfl.beyond import train_multiclass, train_sgd
    from lnfl.training import train

    c = C()
    W0 = c.W0.clone().requires_grad_(True)
    for h in (train(W0, c.data, steps=3), train_sgd(W0, c.data, epochs=1, batch_size=4)):
        assert not h.W0.requires_grad and not h.W.requires_grad and h.W.grad_fn is None
        assert not h.gamma.requires_grad and not h.rho.requires_grad
    h = train_multiclass(c.Wm.clone().requires_grad_(True), c.mc, steps=2)
    assert not h.W0.requires_grad and h.W.grad_fn is None


def test_no_nan_from_degenerate_but_valid_geometry():
    from lnfl.decomposition import decompose
    from lnfl.regimes import loglog_slope
    from lnfl.selection import weights_at

    c = C()
    for call, match in (
        (lambda: decompose(c.W, c.W0, c.zero_mu), "‖μ‖²"),
        (lambda: decompose(c.W, c.W0, _zero_xi(c.data)), "‖ξ_i‖² = 0 for i = 3"),
        (lambda: decompose(c.W, c.W0, _duplicate_xi(c.data)), "linearly dependent"),
        (lambda: weights_at(c.hist, c.zero_mu, 0), "‖μ‖²"),
        (lambda: loglog_slope([2.0, 2.0], [1.0, 3.0]), "distinct"),
        (lambda: loglog_slope([0.0, 2.0], [1.0, 3.0]), r"x\[0\]"),
        (lambda: loglog_slope([NAN, 2.0], [1.0, 3.0]), r"x\[0\]"),
    ):
        with pytest.raises(ValueError, match=match):
            call()


def test_huge_steps_are_refused_up_front_with_the_memory_and_the_remedy():
    from lnfl.race import gamma_race
    from lnfl.training import train

    c = C()
    for steps in (10**8, 10**9):
        for call in (lambda s=steps: train(c.W0, c.data, steps=s), lambda s=steps: gamma_race(c.W0, c.data, steps=s)):
            t0 = time.perf_counter()
            with pytest.raises(ValueError) as err:
                call()
            assert time.perf_counter() - t0 < 1.0
            msg = str(err.value)
            assert f"steps={steps}" in msg and "GB of history" in msg and "record_every=" in msg, msg
    every = int(re.search(r"e\.g\. record_every=(\d+)", msg).group(1))
    from lnfl._validate import check_recording  # the remedy is accepted: the same check passes with it

    check_recording("steps", steps, every, 944)  # n = 8, m = 2, float64: 944 bytes per record


def test_device_that_does_not_exist_is_refused_at_once():
    from lnfl.data import SignalNoiseModel
    from lnfl.model import init_weights

    with pytest.raises(ValueError, match="device"):
        SignalNoiseModel(16, 4.0, device=CUDA_MISSING)
    with pytest.raises(ValueError, match="device"):
        init_weights(2, 16, device=CUDA_MISSING)


def test_theory_never_overflows():
    from lnfl import theory

    with pytest.raises(ValueError, match="overflows a float"):
        theory.n_snr2(20, 1e200, 1.0, 50)
    with pytest.raises(ValueError, match="overflows a float"):
        theory.t1_order(200, 20, 0.1, 1e-200, 400)
    assert theory.noiseless_error_bound(200, 1e200, 1.0, 400) == 0.0
    assert theory.n_snr2(200, 32**0.5, 1.0, 400) == 16.0  # in range: the formula as written, exact rounding
    assert theory.t1_order(200, 20, 0.1, 1.0, 400) == 100.0


# ------------------------------------------------------------------------------ determinism and per-step cost


def test_seeded_runs_are_bit_identical():
    from lnfl.beyond import train_sgd
    from lnfl.training import setup, train

    a, b = (setup(seed=5, n_test=4, n=8, d=16, m=2) for _ in range(2))
    for engine in ("weights", "coef"):
        ha, hb = (train(s.W0, s.data, steps=10, test=s.test, engine=engine) for s in (a, b))
        assert all(torch.equal(getattr(ha, f), getattr(hb, f)) for f in ("W", "gamma", "rho", "margin", "test_acc"))
    sa, sb = (train_sgd(s.W0, s.data, epochs=2, batch_size=3, seed=4) for s in (a, b))
    assert torch.equal(sa.W, sb.W) and torch.equal(sa.rho, sb.rho)


def _validation_calls(fn: Callable[[], object]) -> int:
    """How many calls into lnfl/_validate.py ``fn`` makes."""
    target = str(Path(lnfl.__file__).with_name("_validate.py"))
    count = 0

    def profile(frame, event, arg):  # noqa: ANN001
        nonlocal count
        if event == "call" and frame.f_code.co_filename == target:
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_checks_run_once_at_entry_not_per_step():
    from lnfl.beyond import train_multiclass, train_sgd
    from lnfl.race import gamma_race
    from lnfl.training import train

    c = C()
    for engine in ("weights", "coef"):
        few = _validation_calls(lambda e=engine: train(c.W0, c.data, steps=2, record_every=100, engine=e))
        many = _validation_calls(lambda e=engine: train(c.W0, c.data, steps=60, record_every=100, engine=e))
        assert many == few, f"{engine}: {few} checks for 2 steps, {many} for 60"
    assert _validation_calls(lambda: gamma_race(c.W0, c.data, steps=2, record_every=100)) == _validation_calls(
        lambda: gamma_race(c.W0, c.data, steps=60, record_every=100)
    )
    assert _validation_calls(lambda: train_multiclass(c.Wm, c.mc, steps=2, record_every=100)) == _validation_calls(
        lambda: train_multiclass(c.Wm, c.mc, steps=60, record_every=100)
    )
    assert _validation_calls(lambda: train_sgd(c.W0, c.data, epochs=1, batch_size=8)) == _validation_calls(
        lambda: train_sgd(c.W0, c.data, epochs=1, batch_size=1)
    ), "SGD steps within an epoch run unchecked"


# ------------------------------------------------------------------------------------------ nothing lost


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Nothing in this file may download: a fetch that is not replaced by a test fails loudly."""

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)


def _fake_fetch(monkeypatch, payload: bytes, before: Callable[[str], None] | None = None) -> list[str]:
    calls: list[str] = []

    def fetch(url, filename):  # noqa: ANN001
        calls.append(filename)
        if before is not None:
            before(filename)
        Path(filename).write_bytes(payload)

    monkeypatch.setattr(urllib.request, "urlretrieve", fetch)
    return calls


PAYLOAD = b"a stand-in for the CIFAR-10 archive"
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()  # noqa: S324 - the archive's published checksum is an MD5


def test_download_never_replaces_a_file_it_did_not_write(tmp_path, monkeypatch):
    from lnfl.realdata import download_cifar10

    mine = tmp_path / "cifar-10-python.tar.gz"
    mine.write_bytes(b"the user's own file")
    calls = _fake_fetch(monkeypatch, PAYLOAD)
    with pytest.raises(FileExistsError, match="never replaces a file it did not write"):
        download_cifar10(mine, md5=PAYLOAD_MD5)
    with pytest.raises(FileExistsError):
        download_cifar10(tmp_path, md5=PAYLOAD_MD5)  # a folder: the archive's name inside it is taken
    assert mine.read_bytes() == b"the user's own file" and calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]


def test_download_goes_through_a_temporary_name_and_checks_before_moving(tmp_path, monkeypatch):
    from lnfl.realdata import download_cifar10

    dest = tmp_path / "data" / "c.tar.gz"
    calls = _fake_fetch(monkeypatch, PAYLOAD)
    assert download_cifar10(dest, md5=PAYLOAD_MD5) == dest and dest.read_bytes() == PAYLOAD
    assert Path(calls[0]).parent == dest.parent and Path(calls[0]) != dest  # a temporary name beside dest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["c.tar.gz"]  # no leftover
    assert download_cifar10(dest, md5=PAYLOAD_MD5) == dest and len(calls) == 1  # verified: not fetched again
    # a corrupt download leaves nothing behind
    with pytest.raises(OSError, match="checksum"):
        download_cifar10(tmp_path / "other.tar.gz", md5="0" * 32)
    assert not (tmp_path / "other.tar.gz").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_download_leaves_a_file_that_appears_meanwhile_alone(tmp_path, monkeypatch):
    from lnfl.realdata import download_cifar10

    dest = tmp_path / "c.tar.gz"
    _fake_fetch(monkeypatch, PAYLOAD, before=lambda _: dest.write_bytes(b"written by someone else meanwhile"))
    with pytest.raises(FileExistsError, match="appeared during the download"):
        download_cifar10(dest, md5=PAYLOAD_MD5)
    assert dest.read_bytes() == b"written by someone else meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tar.gz"]
