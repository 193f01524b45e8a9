"""The bad-input matrix: every case through a CLI, one line on stderr, exit status 2, no traceback,
and no run directory that looks complete."""

import json
import struct
import zlib

import pytest
import torch
from PIL import Image

from evostyle import sample_image
from evostyle.search import main as search_main
from evostyle.transfer_cli import main as transfer_main

CAT, STARRY = sample_image("cat.jpg"), sample_image("starry_night.jpg")
FAST = ["--size", "32", "--steps", "1", "--popsize", "5", "--outputs", "2", "--maxiter", "0",
        "--weights", "random", "--device", "cpu", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("this is not an image")
    data = open(CAT, "rb").read()
    (d / "trunc.jpg").write_bytes(data[: len(data) // 4])
    Image.new("RGB", (1, 1), "red").save(d / "one.png")
    head = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (d / "huge.png").write_bytes(head + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    torch.save({"conv.weight": torch.zeros(2)}, d / "notvgg.pt")
    (d / "unknown.toml").write_text('colour = "red"\n')
    (d / "types.toml").write_text('popsize = "ten"\n')
    (d / "bool.toml").write_text('compile = "yes"\n')
    (d / "broken.toml").write_text('popsize = = 3\n')
    (d / "afile").write_text("x")
    (d / "emptyrun").mkdir()
    bad_state = d / "badstate"
    bad_state.mkdir()
    (bad_state / "config.json").write_text(json.dumps({"config": {"size": 16}}))
    (bad_state / "state.json").write_text("{not json")
    return d


def _check(capsys, fn, argv, msg):
    with pytest.raises(SystemExit) as exc:
        fn(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert msg in err[0] and "Traceback" not in err[0], err[0]


CASES = [
    ("missing file", ["--content", "{d}/nope.jpg"], "image not found"),
    ("directory", ["--content", "{d}"], "is a directory"),
    ("non-image", ["--content", "{d}/notes.txt"], "not an image"),
    ("truncated jpeg", ["--content", "{d}/trunc.jpg"], "truncated or corrupt"),
    ("1x1 image", ["--content", "{d}/one.png"], "at least 8 px"),
    ("huge image", ["--content", "{d}/huge.png"], "GiB as float RGB"),
    ("unknown measure", ["--measure", "cosine"], "unknown measure 'cosine'; valid: gram, euclidean, meanstd"),
    ("unknown rotation mode", ["--rotation-mode", "twirl"], "unknown rotation mode 'twirl'; valid:"),
    ("unknown strategy", ["--strategy", "best9bin"], "unknown strategy 'best9bin'; valid: rand1bin"),
    ("low >= high", ["--bounds", "angles=10,5"], "low >= high"),
    ("NaN bounds", ["--bounds", "angles=nan,5"], "must be finite"),
    ("NaN fixed value (x0)", ["--fix", "angle_0=nan"], "fixed value must be finite"),
    ("unknown parameter", ["--fix", "angle_7=0"], "unknown parameter 'angle_7'"),
    ("fixed value out of bounds", ["--fix", "mix=2"], "parameter mix: fixed value 2 is outside its bounds [0, 1]"),
    ("popsize too small", ["--popsize", "3"], "popsize (population size) must be >= 5"),
    ("negative weight", ["--diversity-weight", "-1"], "diversity-weight must be finite and >= 0"),
    ("outputs < 1", ["--outputs", "0"], "outputs must be >= 1"),
    ("steps <= 0", ["--steps", "0"], "steps must be >= 1"),
    ("unwritable out", ["--out", "{d}/afile/run"], "cannot write to output directory"),
    ("unknown config key", ["--config", "{d}/unknown.toml"], "unknown config key 'colour'"),
    ("wrong config type", ["--config", "{d}/types.toml"], "config key 'popsize' must be an integer"),
    ("wrong config bool", ["--config", "{d}/bool.toml"], "config key 'compile' must be true, false or \"auto\""),
    ("broken toml", ["--config", "{d}/broken.toml"], "is not valid TOML"),
    ("weights not VGG19", ["--weights", "{d}/notvgg.pt"], "is not a VGG19 state dict"),
    ("missing resume state", ["--resume", "{d}/emptyrun"], "is missing"),
    ("corrupt resume state", ["--resume", "{d}/badstate"], "corrupt"),
    ("unknown device", ["--device", "tpu"], "unknown device"),
    ("unknown precision", ["--precision", "fp8"], "unknown precision 'fp8'"),
    ("unknown search group", ["--search", "colours"], "unknown search group 'colours'"),
    ("too small for the layers", ["--size", "16"], "too small for layer relu5_1"),
]


@pytest.mark.parametrize("name,extra,msg", CASES, ids=[c[0] for c in CASES])
def test_search_cli_bad_input(files, tmp_path, capsys, name, extra, msg):
    extra = [e.replace("{d}", str(files)) for e in extra]
    if "--resume" in extra:
        argv = extra
    else:
        argv = FAST + extra + ([] if "--out" in extra else ["--out", str(tmp_path / "run")])
    _check(capsys, search_main, argv, msg)
    run = tmp_path / "run"
    assert not (run / "state.json").exists() and not (run / "summary.json").exists()


def test_unknown_layer_through_transfer_cli(tmp_path, capsys):
    _check(capsys, transfer_main, ["--content", CAT, "--style", STARRY, "--style-layers", "relu6_1", "--out",
                                   str(tmp_path / "o"), "--weights", "random"], "unknown layer 'relu6_1'; valid:")


@pytest.mark.parametrize("kind", ["L", "RGBA", "P", "I;16"])
def test_unusual_png_modes_work(tmp_path, random_image_file, kind):
    p = random_image_file(kind, (24, 32), f"img_{kind.replace(';', '')}.png")
    assert transfer_main(["--content", str(p), "--style", STARRY, "--size", "32", "--steps", "1", "--weights",
                          "random", "--device", "cpu", "--out", str(tmp_path / "o")]) == 0


def test_debug_shows_traceback(tmp_path):
    from evostyle.errors import EvostyleError
    with pytest.raises(EvostyleError):
        search_main(FAST + ["--measure", "cosine", "--debug", "--out", str(tmp_path / "r")])
