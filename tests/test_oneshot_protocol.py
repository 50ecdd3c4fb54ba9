"""The one-shot protocol through the runner, with a minimal test double (the real one-shot searchers
are a later issue): the runner owns data, batches, epochs and time; derived architectures go through
the evaluator and the log with ``cost_search_seconds``; same seed, same derivations; resume does not
search again."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.results import ResultLog
from nasatlas.searchers.registry import SEARCHERS, register_searcher
from nasatlas.studies.oneshot import is_one_shot, load_search_data
from nasatlas.studies.runner import run_study
from nasatlas.studies.studyfile import parse_study

CALLS: dict[str, int] = {"relax": 0, "step": 0, "derive": 0}


class OneShotDouble:
    """Trains a real (tiny) linear model on the weight half and a real architecture logit table on
    the other half; derives the argmax per decision. Counts calls; checks what the runner hands it."""

    def __init__(self, epochs: int = 3, batch_size: int = 64) -> None:
        self.epochs = epochs
        self.batch_size = batch_size

    def params(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size}

    def relax(self, space: Any, net_config: Mapping[str, Any]) -> Any:
        CALLS["relax"] += 1
        c, h, w = net_config["input"]
        self.space = space
        self.model = torch.nn.Linear(c * h * w, int(net_config["num_classes"]))
        self.alpha = torch.nn.Parameter(1e-3 * torch.randn(len(space.sizes), max(space.sizes)))
        self.w_opt = torch.optim.SGD(self.model.parameters(), lr=0.05)
        self.a_opt = torch.optim.Adam([self.alpha], lr=0.1)
        return self.model

    def step(self, train_batch: Any, val_batch: Any) -> dict[str, float]:
        CALLS["step"] += 1
        (xt, yt), (xv, yv) = train_batch, val_batch
        assert xt.shape[1:] == xv.shape[1:] and xt.shape[0] <= self.batch_size
        loss = torch.nn.functional.cross_entropy(self.model(xt.flatten(1)), yt)
        self.w_opt.zero_grad()
        loss.backward()
        self.w_opt.step()
        # architecture step on the other half: a loss whose gradient depends on the validation batch
        scale = torch.nn.functional.cross_entropy(self.model(xv.flatten(1)), yv).detach()
        a_loss = scale * torch.softmax(self.alpha, 1)[:, 0].sum()
        self.a_opt.zero_grad()
        a_loss.backward()
        self.a_opt.step()
        return {"loss": float(loss.detach())}

    def derive(self) -> np.ndarray:
        CALLS["derive"] += 1
        sizes = torch.tensor(self.space.sizes)
        masked = self.alpha.detach().clone()
        for j, s in enumerate(self.space.sizes):
            masked[j, s:] = -float("inf")
        return masked.argmax(1).numpy() % sizes.numpy()


STUDY = """
[study]
name = "oneshot"
seed = 5
repeats = 2
objective = "params"

[space]
name = "nb201"

[data]
name = "digits"
params = {{ resize = 8, seed = 0 }}

[evaluator]
name = "cost"
params = {{ net = "tiny" }}

[[searchers]]
name = "oneshot_double"
params = {{ epochs = {epochs} }}

[[searchers]]
name = "random"

[budget]
evaluations = 2
"""


@pytest.fixture(autouse=True)
def _double() -> Any:
    register_searcher("oneshot_double", OneShotDouble)
    for k in CALLS:
        CALLS[k] = 0
    yield
    SEARCHERS.unregister("oneshot_double")


def _run(tmp_path: Path, name: str, epochs: int = 3, resume: bool = False) -> Any:
    study = parse_study(__import__("tomllib").loads(STUDY.format(epochs=epochs)), where="oneshot.toml")
    run_study(study, tmp_path / name, progress=False, resume=resume)
    return ResultLog(tmp_path / name / "evaluations").read().sort_values(["searcher", "repeat", "trial"])


def test_derived_archs_are_logged_with_search_seconds(tmp_path: Path) -> None:
    assert is_one_shot(OneShotDouble()) and not is_one_shot(object())
    df = _run(tmp_path, "a")
    one = df[df["searcher"] == "oneshot_double"]
    assert len(one) == 4 and set(one["trial"]) == {0, 1} and set(one["repeat"]) == {0, 1}
    assert (one["status"] == "ok").all() and one["metric_params"].gt(0).all()
    # derived after epochs 1 and 2 (the last two of three): search time grows along the trials
    for _, g in one.groupby("repeat"):
        s = g.sort_values("trial")["cost_search_seconds"].to_numpy()
        assert (s > 0).all() and s[1] >= s[0]
    # black-box rows have no search time
    assert df[df["searcher"] == "random"]["cost_search_seconds"].isna().all()
    # the runner did the epochs: 2 repeats x 3 epochs of zipped half-passes; derive once per epoch
    assert CALLS["relax"] == 2 and CALLS["derive"] == 6
    n_train = load_search_data(None, np.random.default_rng(0))[1][0].shape[0]
    assert CALLS["step"] == 2 * 3 * -(-n_train // 64)


def test_same_seed_same_derivations_and_resume_does_not_search_again(tmp_path: Path) -> None:
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b")
    cols = ["searcher", "repeat", "trial", "arch", "seed"]
    assert a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))
    relaxed = CALLS["relax"]
    c = _run(tmp_path, "a", resume=True)
    assert CALLS["relax"] == relaxed and len(c) == len(a)


def test_search_halves_are_disjoint_and_cover_the_training_split() -> None:
    d, (xw, yw), (xa, ya) = load_search_data(None, np.random.default_rng(1))
    n = d.x_train.shape[0]
    assert xw.shape[0] == ya.shape[0] == n // 2 and xw.shape[1] == 3
    flat = d.x_train.flatten(1)
    # each half's rows are rows of the training split, and no row index is in both halves
    iw = {int(torch.nonzero((flat == r).all(1))[0]) for r in xw.flatten(1)[:50]}
    ia = {int(torch.nonzero((flat == r).all(1))[0]) for r in xa.flatten(1)[:50]}
    assert not iw & ia


def test_searcher_without_epochs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="epochs >= 1"):
        _run(tmp_path, "bad", epochs=0)
