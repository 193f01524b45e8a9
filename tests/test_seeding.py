"""Every seed the settings accept works everywhere a seed is derived from it (issue 28, class 4): the
derived seeds stay in torch's range, runs below the wrap keep their seeds, and a seed outside the
range is refused in one line by the search and the transfer command alike."""

import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.search.config import make_config
from evostyle.seeding import SEED_MAX, TORCH_SEED_SPAN, check_seed, derived_seed


def test_derived_seeds_are_the_old_ones_below_the_wrap_and_in_torchs_range_above():
    assert derived_seed(3, 2) == 3002 and derived_seed(0, 17) == 17  # every earlier run keeps its seeds
    for seed in (SEED_MAX, SEED_MAX - 1, 2**62, TORCH_SEED_SPAN // 1000):
        for k in (0, 1, 999):
            s = derived_seed(seed, k)
            assert 0 <= s < TORCH_SEED_SPAN
            torch.Generator().manual_seed(s)  # accepted
    assert len({derived_seed(SEED_MAX, k) for k in range(4)}) == 4


def test_a_search_at_the_top_of_the_seed_range_runs_with_its_noise_floor(tmp_path):
    from evostyle.search import run_search
    cfg = make_config({"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 0, "weights": "random",
                       "device": "cpu", "seed": SEED_MAX, "rotation_mode": "channel",
                       "search": ["angles", "noise", "perturb"]})
    res = run_search(cfg, tmp_path / "run", quiet=True)
    assert res.candidates().fitness.notna().all()
    assert res.noise_floor["seeds"][0] > SEED_MAX and res.noise_floor["floor"]["pixel"] > 0


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1, True, 1.5])
def test_a_seed_outside_the_range_is_refused_in_one_line(seed, tmp_path, capsys):
    from evostyle.cli.transfer import main as transfer
    with pytest.raises(EvostyleError, match="seed"):
        make_config({"seed": seed})
    with pytest.raises(EvostyleError, match=r"seed=\.\.\. must be an integer from 0 to 9223372036854775807"):
        check_seed(seed)
    if isinstance(seed, int) and not isinstance(seed, bool):
        with pytest.raises(SystemExit) as exc:
            transfer(["--content", "sample:cat.jpg", "--style", "sample:starry_night.jpg", "--size", "32",
                      "--steps", "1", "--seed", str(seed), "--weights", "random", "--out", str(tmp_path / "t")])
        assert exc.value.code == 2 and not (tmp_path / "t").exists()
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
