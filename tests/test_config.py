"""make_config: every wrong type or value is refused with a message that names the key."""

import pytest

from evostyle.errors import EvostyleError
from evostyle.search.config import load_toml, make_config


@pytest.mark.parametrize("values,msg", [
    ({"popsize": 6.5}, "config key 'popsize' must be an integer"),
    ({"popsize": True}, "config key 'popsize' must be an integer"),
    ({"lr": "fast"}, "config key 'lr' must be a number"),
    ({"measure": 3}, "config key 'measure' must be a string"),
    ({"search": ["angles", 2]}, "config key 'search' must be a list of strings"),
    ({"bounds": [0, 1]}, "config key 'bounds' must be a table"),
    ({"mutation": [0.5]}, "config key 'mutation' must be a number or [low, high]"),
    ({"max_batch": 2.5}, "config key 'max_batch' must be an integer"),
    ({"loss_cap": "high"}, "config key 'loss_cap' must be a number"),
    ({"compile_mode": "fast"}, "unknown compile mode 'fast'"),
    ({"compile_mode": 1}, "config key 'compile_mode' must be a string"),
    ({"style": []}, "at least one style image (style=...) is needed"),
    ({"outputs": 0}, "outputs must be an integer in [1, 1,024]"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"maxiter": -1}, "maxiter must be >= 0"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"lr": 1e300}, "lr must be a positive number up to 10, got 1e+300"),  # Adam's step would overflow to NaN
    ({"tol": float("nan")}, "tol must be finite and >= 0"),
    ({"recombination": 1.5}, "recombination must be in [0, 1]"),
    ({"mutation": [1.0, 0.5]}, "mutation must be [low, high] with 0 <= low <= high <= 2"),
    ({"mutation": 3}, "mutation must be in [0, 2]"),
    ({"size": 4}, "size must be an integer in [8, 8,192], got 4"),
    ({"max_batch": 0}, "max-batch must be >= 1"),
    ({"loss_cap": -1}, "loss-cap must be a positive number"),
    ({"optimizer": "scipy-de", "boundary": "reflect"}, "scipy-de only supports boundary 'resample'"),
    ({"precision": "fp8"}, "unknown precision"),
])
def test_bad_values_are_refused(values, msg):
    with pytest.raises(EvostyleError) as exc:
        make_config(values)
    assert msg in str(exc.value)


def test_good_values_are_normalised():
    cfg = make_config({"lr": 1, "search": "angles", "mutation": [0.4, 0.9], "max_batch": 8})
    assert cfg.transfer.lr == 1.0 and isinstance(cfg.transfer.lr, float) and cfg.space.search == ["angles"]
    assert cfg.to_dict()["de"]["mutation"] == [0.4, 0.9] and cfg.transfer.max_batch == 8


def test_toml_image_paths_are_taken_beside_the_file(tmp_path):
    from evostyle.search.config import load_toml
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "c.jpg").write_bytes(b"x")
    (d / "s.jpg").write_bytes(b"x")
    (d / "run.toml").write_text('content = "c.jpg"\nstyle = ["s.jpg", "elsewhere.jpg", "sample:great_wave.jpg"]\n')
    data = load_toml(d / "run.toml")
    assert data["content"] == str(d / "c.jpg")
    assert data["style"] == [str(d / "s.jpg"), "elsewhere.jpg", "sample:great_wave.jpg"]  # only what exists there
    (d / "one.toml").write_text('style = "s.jpg"\n')  # a single style may be a plain string
    assert load_toml(d / "one.toml")["style"] == str(d / "s.jpg")


def test_compile_auto_compiles_long_searches_on_cuda_only():
    """``compile = "auto"`` weighs the planned work against the compilation's cost; true and false
    are taken as given."""
    import torch

    from evostyle.search.plan import COMPILE_AUTO_MIN_WORK, compile_choice
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    race = make_config({"popsize": 8, "maxiter": 5, "outputs": 4, "steps": 200})  # 38 400 image-steps
    assert race.transfer.compile == "auto"
    assert compile_choice(race, cuda, (256, 256)) == (False, "auto: 38,400 planned 256 px image-steps, under 100,000")
    long_ = make_config({"popsize": 16, "maxiter": 20, "outputs": 4, "steps": 300})  # 403 200 image-steps
    use, why = compile_choice(long_, cuda, (256, 256))
    assert use and "at least 100,000" in why
    assert compile_choice(long_, cuda, (64, 64))[0] is False  # 1/16 of the pixels: 25 200 image-steps
    assert compile_choice(long_, cpu, (256, 256)) == (False, "auto: not on CUDA")
    assert compile_choice(make_config({"compile": True}), cpu, (64, 64)) == (True, "compile = true in the config")
    assert compile_choice(make_config({"compile": False}), cuda, (4096, 4096))[0] is False
    edge = make_config({"popsize": 10, "maxiter": 0, "outputs": 1, "steps": COMPILE_AUTO_MIN_WORK // 10})
    assert compile_choice(edge, cuda, (256, 256))[0] is True  # exactly the threshold compiles


def test_compile_flag_values():
    from evostyle.cli.search import build_parser, config_from_args
    cfg = lambda *a: config_from_args(build_parser().parse_args(list(a)))
    assert cfg().transfer.compile == "auto"
    assert cfg("--compile").transfer.compile is True  # a bare flag, as before
    assert cfg("--compile", "on").transfer.compile is True
    assert cfg("--compile", "off").transfer.compile is False
    assert cfg("--compile", "auto").transfer.compile == "auto"
    assert cfg().transfer.compile_mode == "auto"
    assert cfg("--compile-mode", "reduce-overhead").transfer.compile_mode == "reduce-overhead"


def test_compile_mode_reaches_the_engine():
    """The search's transfer settings carry the configured mode (used whenever the search compiles)."""
    from evostyle.search.run import build
    engine = build(make_config({"compile_mode": "reduce-overhead", "size": 32, "device": "cpu",
                                "weights": "random", "compile": True})).engine
    assert engine.cfg.compile_mode == "reduce-overhead" and engine.cfg.compile is True


def test_the_resolved_config_round_trips_flat_nested_and_through_config_json(tmp_path):
    import json

    from evostyle.search.config import FIELDS, SearchConfig, load_toml, validate
    cfg = make_config({"popsize": 7, "mutation": 0.6, "search": ["angles"], "fixed": {"angle_0": 0.0},
                       "compile": True, "reference_point": [3, 0], "loss_cap": 9})
    assert cfg.de.population == 7 and cfg.get("popsize") == 7  # the old name is an alias
    assert make_config(cfg.to_dict()) == cfg  # nested, as config.json writes it
    assert make_config({name: cfg.get(name) for name in FIELDS}) == cfg  # flat, as a TOML file usually is
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": cfg.to_dict(), "seed": 0}))  # a run record
    assert make_config(load_toml(path)) == cfg
    assert validate(SearchConfig()) == make_config({})


def test_every_setting_has_a_flag_help_and_a_section(capsys):
    from evostyle.cli.search import build_parser
    from evostyle.search.config import FIELDS
    actions = {a.dest: a for a in build_parser()._actions}
    for name, (_, f) in FIELDS.items():
        assert name in actions and actions[name].help and f.metadata["help"], name
    assert set(actions["population"].option_strings) == {"--population", "--popsize"}
    with pytest.raises(EvostyleError, match="unknown config key 'colour'"):
        make_config({"de": {"colour": 1}})


def test_help_text_is_plain_without_rest_markup():
    from evostyle.cli.common import plain
    assert plain("Run ``x`` with :class:`~evostyle.transfer.TransferConfig` and :func:`run_search`.\nMore.") == \
        "Run x with TransferConfig and run_search."
    assert plain(None) == "" and plain("  ") == ""


@pytest.mark.parametrize("name", sorted(__import__("evostyle.search.config", fromlist=["FIELDS"]).FIELDS))
def test_every_setting_coerces_a_value_of_its_annotated_type(name):
    """A setting whose annotation coerce() does not know fails with a TypeError the first time a user
    gives it (``ray_address: str | None`` did); every setting takes a value of its own type."""
    import typing

    from evostyle.search.config import SearchConfig, annotation, coerce
    value = SearchConfig().get(name)
    if value is None:  # an optional setting: try a value of its non-None type
        kind = next(a for a in typing.get_args(annotation(name)) if a is not type(None))
        value = {int: 2, float: 1.5, str: "auto"}.get(kind, [1.0, 0.0])
    assert coerce(name, value) == value


def test_ray_address_is_a_string_setting():
    from evostyle.search.config import make_config
    assert make_config({"executor": "ray", "ray_address": "auto"}).run.ray_address == "auto"
    with pytest.raises(EvostyleError, match="'ray_address' must be a string"):
        make_config({"executor": "ray", "ray_address": 3})


def test_one_painting_with_the_default_groups_leaves_out_mix_in_one_line(caplog, tmp_path):
    import logging

    from evostyle.search.run import build
    from evostyle.search.settings import DEFAULT_SEARCH
    with caplog.at_level(logging.INFO, logger="evostyle"):
        cfg = make_config({"style": ["sample:starry_night.jpg"], "size": 32, "weights": "random"})
    rest = [g for g in DEFAULT_SEARCH if g != "mix"]
    assert cfg.space.search == rest
    assert [r.getMessage() for r in caplog.records] == [
        f"search group(s) mix left out (mix needs 2 style images, 1 given); searching {', '.join(rest)}"]
    assert "mix" not in build(cfg).space.by_name  # and the search builds
    assert make_config({}).space.search == list(DEFAULT_SEARCH)  # two paintings: all of them
    named = make_config({"style": ["sample:starry_night.jpg"], "search": ["mix"], "size": 32, "weights": "random"})
    with pytest.raises(EvostyleError, match=r"search group 'mix' needs at least 2 style images \(style=\.\.\.\)"):
        build(named)  # a group the user named is not dropped behind their back


def test_a_noise_start_with_the_default_groups_leaves_out_noise_and_a_named_noise_group_is_refused(caplog,
                                                                                                  monkeypatch):
    import logging

    from evostyle.search import settings
    monkeypatch.setattr(settings, "DEFAULT_SEARCH", (*settings.DEFAULT_SEARCH, "noise"))  # were it a default
    DEFAULT_SEARCH = settings.DEFAULT_SEARCH
    with caplog.at_level(logging.INFO, logger="evostyle"):
        cfg = make_config({"image_init": "noise", "style": ["sample:starry_night.jpg"]})
    assert cfg.space.search == [g for g in DEFAULT_SEARCH if g not in ("mix", "noise")]
    assert [r.getMessage() for r in caplog.records] == [
        "search group(s) mix, noise left out (mix needs 2 style images, 1 given; noise varies a content start, "
        f"and the start is image_init='noise'); searching {', '.join(cfg.space.search)}"]
    with pytest.raises(EvostyleError, match="search group noise varies the noise added to a content start"):
        make_config({"image_init": "noise", "search": ["angles", "noise"]})


@pytest.mark.parametrize(("text", "suffix", "says"), [
    ('[1, 2]', ".json", "holds a list at its top level"),
    ('"size"', ".json", "holds a str at its top level"),
    ('[' * 100_000 + ']' * 100_000, ".json", "nested too deeply"),
    ('{"size": 32, "size": 64}', ".json", "key 'size' is given twice"),
])
def test_a_config_file_that_is_not_one_table_of_settings_given_once_is_refused(tmp_path, text, suffix, says):
    f = tmp_path / f"c{suffix}"
    f.write_text(text)
    with pytest.raises(EvostyleError, match=says):
        load_toml(f)


@pytest.mark.parametrize(("values", "says"), [
    ({"popsize": 8, "population": 9}, "setting population is given twice, as 'popsize' and 'population'"),
    ({"size": 32, "transfer": {"size": 64}}, "setting size is given twice, as 'size' and 'size'"),
    ({"fixed": {"angle_0": True}}, "fixed': angle_0 must be a number, got True"),
    ({"bounds": {"mix": [0.1, True]}}, r"bounds': mix must be \[low, high\], two numbers"),
    ({"bounds": {"mix": 0.5}}, r"bounds': mix must be \[low, high\]"),
])
def test_a_setting_given_twice_or_a_boolean_as_a_number_is_refused(values, says):
    with pytest.raises(EvostyleError, match=says):
        make_config(values)
    assert make_config({"fixed": {"angle_0": 90}}).space.fixed == {"angle_0": 90.0}  # an integer is a number


def test_the_python_api_says_what_to_pass(tmp_path):
    from evostyle.search import run_search
    with pytest.raises(EvostyleError, match=r"make_config's file_values must be a dict of settings.*load_toml"):
        make_config("config.toml")
    with pytest.raises(EvostyleError, match=r"run_search takes a SearchConfig, got a dict.*make_config"):
        run_search({"size": 32}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evostyle_with_no_command_prints_its_help_and_fails(capsys):
    from evostyle.cli.main import main
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: evostyle" in err and "search" in err
