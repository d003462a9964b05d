"""PyTorch's intra-op threads are chosen from the work of a training call, not from the
core count alone (issue 21: 2,919 sequences/s on one thread, 101 on two, on a busy
machine). No result depends on them: the golden tests train on one thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_madness.models import training
from lstm_madness.models.protocol import TrainingJob, TrainSettings
from lstm_madness.models.training import MIN_MACS_PER_THREAD, fit_networks, torch_threads


def _job(units=(32,), batch=64, features=1, cell="lstm") -> TrainingJob:
    settings = TrainSettings(
        units=units, cell=cell, dropout=0.0, task="regression", epochs=1, batch_size=batch,
        learning_rate=1e-3, loss="mse", patience=1, validation_fraction=0.1,
        validation_gap=0, min_delta=0.0, clip_norm=1.0, device="cpu",
    )  # fmt: skip
    return TrainingJob(settings, np.zeros((8, 5, features), np.float32), np.zeros(8), 0)


def test_the_demo_trains_on_one_thread_and_wide_batched_calls_on_more():
    demo = [_job() for _ in range(45)]  # 3 seeds x 15 folds of LSTM(32), batch 64
    assert MIN_MACS_PER_THREAD > 45 * 64 * 4 * 32 * 33
    assert torch_threads(demo, together=True, cpus=2) == 1
    wide = [_job(units=(256,), batch=128) for _ in range(64)]  # 2.2 G multiply-adds a step
    assert torch_threads(wide, together=True, cpus=2) == 2
    assert torch_threads(wide, together=True, cpus=1) == 1  # never above the knob
    assert torch_threads(wide, together=False, cpus=2) == 1  # one at a time: 34 M each
    gru = [_job(units=(256, 256), batch=128, cell="gru") for _ in range(64)]  # layer 2 widest
    assert torch_threads(gru, together=True, cpus=64) == 64 * 128 * 3 * 256 * 512 // (1 << 27)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("engine", ["batched", "torch"])
def test_fit_networks_trains_under_the_rule_and_restores_the_setting(
    monkeypatch, two_threads, engine
):
    seen: list[int] = []

    def fake(jobs, progress, workers):
        seen.append(torch.get_num_threads())
        return [None] * len(jobs)

    monkeypatch.setitem(training.ENGINES, engine, fake)
    fit_networks([_job() for _ in range(4)], [engine] * 4)
    wide = [_job(units=(256,), batch=128) for _ in range(64)]
    fit_networks(wide, [engine] * 64)
    many = min(2, training.available_cpus()) if engine == "batched" else 1
    assert seen == [1, many]
    assert torch.get_num_threads() == 2
