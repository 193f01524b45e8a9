"""The evaluator's expansion of candidates into transfer rows, for one, two and three styles."""

import pytest
import torch

from evostyle.search.evaluator import Evaluator
from evostyle.search.space import style_space
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.engine import StyleEngine


def _evaluator(model, content, styles, outputs=2):
    groups = ["angles", "mix"] if len(styles) > 1 else ["angles"]
    space = style_space(outputs, len(styles), ["relu1_1", "relu2_1"], groups, "channel")
    cfg = TransferConfig(style_layers=("relu1_1", "relu2_1"), steps=2)
    engine = StyleEngine(content, styles, cfg, rotation_mode="channel", model=model)
    return Evaluator(engine, space, outputs), space


def test_rows_for_one_and_three_styles(model, content64, style64, wave64):
    ev, space = _evaluator(model, content64, [style64])
    assert "mix" not in space.names
    values = space.to_values(torch.full((3, space.dim), 0.5, dtype=torch.float64))
    rows = ev.rows(values)
    assert rows.mix.tolist() == [[1.0]] * 6 and rows.angles.shape == (6,) and rows.seeds == [0, 1] * 3
    assert rows.init_noise is None  # the noise group is not searched: every output starts as configured

    ev3, space3 = _evaluator(model, content64, [style64, wave64, content64])
    assert {"mix_0", "mix_1", "mix_2"} <= set(space3.names)
    v = {n: torch.full((2,), float(p.value if p.value is not None else 0.5), dtype=torch.float64)
         for n, p in zip(space3.names, space3.params)}
    v["mix_0"], v["mix_1"], v["mix_2"] = (torch.tensor([0.2, 0.0], dtype=torch.float64),
                                          torch.tensor([0.6, 0.0], dtype=torch.float64),
                                          torch.tensor([0.2, 0.0], dtype=torch.float64))
    mix3 = ev3.rows(v)[0]
    assert mix3.shape == (4, 3)  # P = 2 candidates x K = 2 outputs
    assert torch.allclose(mix3[0], torch.tensor([0.2, 0.6, 0.2])) and torch.equal(mix3[0], mix3[1])
    assert mix3[2].tolist() == [1.0, 1.0, 1.0]  # all-zero weights: an equal mix, not a division by 0


def test_three_style_population_scores_every_candidate(model, content64, style64, wave64):
    ev, space = _evaluator(model, content64, [style64, wave64, content64])
    unit = torch.rand(3, space.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    e = ev.evaluate(unit)
    assert e.fitness.shape == (3,) and torch.isfinite(e.fitness).all()
    assert e.images.shape[:2] == (3, 2) and set(e.row(0)) >= {"param_mix_2", "loss_score", "fitness"}
    assert set(e.phases) == {"targets", "transfer", "scoring"} and min(e.phases.values()) > 0
    assert sum(e.phases.values()) == pytest.approx(e.seconds)  # the parts cover the evaluation
