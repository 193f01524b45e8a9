import json

import pytest

from evostyle.cli.transfer import main
from evostyle.io.samples import sample_image

CAT, STARRY, WAVE = sample_image("cat.jpg"), sample_image("starry_night.jpg"), sample_image("great_wave.jpg")
BASE = ["--content", CAT, "--size", "32", "--steps", "3", "--weights", "random", "--device", "cpu"]


def test_cli_writes_outputs_and_losses(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(BASE + ["--style", STARRY, "--style", WAVE, "--mix", "0", "0.25", "--rotation-mode", "channel",
                      "--angles", "0", "90", "--out", str(out)])
    assert rc == 0
    rec = json.loads((out / "losses.json").read_text())
    assert len(rec["outputs"]) == 4
    assert sorted(p.name for p in out.glob("output_*.png")) == [f"output_{i}.png" for i in range(4)]
    assert rec["weights"]["used"] == "random"
    assert rec["outputs"][1]["mix"] == [1.0, 0.0] and rec["outputs"][1]["angle"] == 90
    assert rec["outputs"][2]["mix"] == [0.75, 0.25]
    for o in rec["outputs"]:
        assert set(o["initial"]) >= {"content", "style", "total", "style_relu1_1", "tv"}
    assert rec["config"]["transfer"]["steps"] == 3 and "torch" in rec["environment"]
    assert "wrote 4 image(s), grid.jpg" in capsys.readouterr().out
    from PIL import Image
    with Image.open(out / "grid.jpg") as grid:  # content, 2 styles, 4 outputs in 4 columns, labelled
        assert grid.width >= 4 * 160 and grid.height >= 2 * 100


@pytest.mark.parametrize("extra,msg", [
    (["--style", "missing.jpg"], "image not found"),
    (["--style", STARRY, "--style-layers", "relu9_1"], "unknown vgg19 layer"),
    (["--style", STARRY, "--steps", "0"], "steps must be an integer >= 1"),
    (["--style", STARRY, "--style", WAVE, "--mix", "1.5"], "second style's weight"),
    (["--style", STARRY, "--rotation-mode", "dfr", "--angles", "45"], "0, 90, 180 or 270"),
    (["--style", STARRY, "--weights", "nope.pt"], "is neither a name (imagenet"),
    (["--style", STARRY, "--style-weight", "-1"], "style-weight must be finite"),
    (["--style", STARRY, "--init-image", "missing.jpg"], "image not found"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, extra, msg):
    with pytest.raises(SystemExit) as exc:
        main(BASE + extra + ["--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o" / "losses.json").exists()


def test_cli_offers_every_precision_of_the_search(tmp_path):
    """fp64 (the slow reference) is a choice here as in the search config; the record names it."""
    out = tmp_path / "run"
    assert main(BASE + ["--style", STARRY, "--steps", "2", "--precision", "fp64", "--out", str(out)]) == 0
    assert json.loads((out / "losses.json").read_text())["precision"] == "fp64"


def test_help_lists_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: relu1_1 relu2_1 relu3_1 relu4_1 relu5_1)" in text and "steps (default: 300)" in text
    assert "total-variation term (default: 0.0)" in text  # a zero default is shown, not taken for False
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "learning rate (default: the optimiser's own: adam 0.05, lbfgs 1)" in text


def test_defaults_are_the_transfer_config_s():
    """Every transfer setting the command line takes starts at TransferConfig's default (one source)."""
    import dataclasses

    from evostyle.cli.transfer import build_parser
    from evostyle.transfer.config import TransferConfig
    parser, flags = build_parser(), {"optimizer", "init", "compile"}
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    taken = [a.dest for a in parser._actions if a.dest in fields]
    assert len(taken) >= 15 and flags <= set(taken)
    for dest in taken:
        if dest == "compile_mode":  # None: not given (a given mode implies --compile), then TransferConfig's
            assert parser.get_default(dest) is None
            continue
        default = parser.get_default(dest)
        assert (tuple(default) if isinstance(default, list) else default) == getattr(TransferConfig, dest), dest


def test_lbfgs_runs_with_its_own_lr_and_the_record_says_so(tmp_path):
    out = tmp_path / "run"
    assert main(BASE + ["--style", STARRY, "--steps", "2", "--optimizer", "lbfgs", "--out", str(out)]) == 0
    assert json.loads((out / "losses.json").read_text())["config"]["transfer"]["lr"] == 1.0


def test_compile_mode_implies_compile(tmp_path, fake_compile):
    """``--compile-mode M`` compiles with mode M (a mode alone would otherwise be ignored); the record
    says so."""
    assert main(BASE + ["--style", STARRY, "--compile-mode", "reduce-overhead", "--out", str(tmp_path / "o")]) == 0
    saved = json.loads((tmp_path / "o" / "losses.json").read_text())
    rec = saved["config"]["transfer"]
    assert rec["compile"] is True and rec["compile_mode"] == "reduce-overhead"
    assert saved["compile_mode_used"] == "reduce-overhead"
    assert [kw["mode"] for _, kw in fake_compile] == ["reduce-overhead", "reduce-overhead"]  # step, update


def test_a_transfer_checks_its_settings_once(tmp_path, monkeypatch):
    """The engine checks the config it is given; the command line does not check it again first."""
    from evostyle.transfer.config import TransferConfig
    calls, real = [], TransferConfig.validate
    monkeypatch.setattr(TransferConfig, "validate", lambda self: calls.append(self) or real(self))
    assert main(BASE + ["--style", STARRY, "--steps", "1", "--out", str(tmp_path / "o")]) == 0
    assert len(calls) == 1


def test_init_image_and_pool(tmp_path):
    """--init-image starts every output from that image (the content itself gives --init content's
    outputs, bit for bit; the painting gives others); --pool avg is another network; both recorded."""
    import torch

    from evostyle.io.images import load_image

    def run(name, *extra):
        assert main(BASE + ["--style", STARRY, "--angles", "0", "0", "--out", str(tmp_path / name), "-q", *extra]) == 0
        return [load_image(tmp_path / name / f"output_{k}.png") for k in range(2)]
    plain = run("plain")
    assert all(torch.equal(a, b) for a, b in zip(run("same", "--init-image", CAT), plain))
    painted = run("painted", "--init-image", "sample:starry_night.jpg")
    assert not torch.equal(painted[0], plain[0]) and torch.equal(painted[0], painted[1])
    avg = run("avg", "--pool", "avg")
    assert not torch.equal(avg[0], plain[0])
    rec = json.loads((tmp_path / "avg" / "losses.json").read_text())
    assert rec["config"]["pool"] == "avg" and rec["weights"]["pool"] == "avg"
    assert json.loads((tmp_path / "painted" / "losses.json").read_text())["config"]["init_image"] == \
        "sample:starry_night.jpg"


def test_save_every_keeps_the_outputs_along_the_way_across_scales(tmp_path):
    from PIL import Image
    out = tmp_path / "t"
    assert main(["--content", CAT, "--style", STARRY, "--size", "64", "--scales", "32", "64", "--steps", "5",
                 "--save-every", "2", "--angles", "0", "90", "--weights", "random", "--device", "cpu", "-q",
                 "--out", str(out)]) == 0
    saved = sorted(p.name for p in out.glob("output_*_step*.png"))
    assert saved == [f"output_{k}_step{s:05d}.png" for k in (0, 1) for s in (2, 4)]  # steps counted across scales
    with Image.open(out / "output_0_step00002.png") as coarse, Image.open(out / "output_0_step00004.png") as fine:
        assert max(coarse.size) == 32 and max(fine.size) == 64  # step 2 at 32 px (2 of its 2), step 4 at 64 px
    with pytest.raises(SystemExit):
        main(BASE + ["--style", STARRY, "--save-every", "-1", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("width, says", [(2000, "raise --size to at least 4000"),
                                         (8000, "too narrow for layer relu5_1: its short side needs 16 px, which "
                                                "would take a long side of 16000 px (at most 8192); crop")])
def test_a_panorama_is_told_a_fix_that_exists(tmp_path, capsys, width, says):
    """A 250:1 strip needs a larger size, and says which; a 1000:1 one cannot be helped by any size,
    and is told to crop instead of to raise --size."""
    from PIL import Image
    strip = tmp_path / "strip.png"
    Image.new("RGB", (width, 8), (90, 60, 30)).save(strip)
    with pytest.raises(SystemExit) as exc:
        main(["--content", str(strip), "--style", STARRY, "--size", "64", "--steps", "1", "--weights", "random",
              "--device", "cpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and says in err[0], err


def test_snapshots_are_recoloured_as_the_outputs_are(tmp_path):
    """--original-colors luminance recolours after the transfer: the snapshots too, each against the
    photo at its own size (a coarse scale's too), so recolouring one again changes nothing; without
    the recolouring a snapshot's chroma is the painting's, and it would."""
    from evostyle.io.images import load_image, resize
    from evostyle.style.colour import ORIGINAL_COLOURS
    _, recolour = ORIGINAL_COLOURS.get("luminance")
    for colours, out in ((["--original-colors", "luminance"], tmp_path / "luminance"), ([], tmp_path / "plain")):
        assert main(["--content", CAT, "--style", STARRY, "--size", "64", "--scales", "32", "64", "--steps", "5",
                     "--save-every", "2", *colours, "--weights", "random", "--device", "cpu", "-q",
                     "--out", str(out)]) == 0
        for step in (2, 4):  # 32 px, then 64 px
            snap = load_image(out / f"output_0_step{step:05d}.png")
            photo = resize(load_image(CAT, 64), tuple(snap.shape[-2:]))
            moved = float((recolour(snap[None], photo)[0] - snap).abs().max())
            assert (moved <= 3 / 255) == bool(colours), (colours, step, moved)
