"""The bad-input matrix: every case through a CLI, one line on stderr, exit status 2, no traceback,
and no run directory that looks complete."""

import json
import struct
import zlib

import pytest
import torch
from PIL import Image

from evostyle.cli.search import main as search_main
from evostyle.cli.transfer import main as transfer_main
from evostyle.io.samples import sample_image

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
    from evostyle.rundir.layout import config_hash
    bad_config = {"size": 32, "weights": "random", "device": "cpu"}
    (bad_state / "config.json").write_text(json.dumps({"config": bad_config}))
    # the config unedited (its hash the marker's), so that what is at fault is the state alone
    (bad_state / ".evostyle-run").write_text(json.dumps({"run_id": "x", "config_sha256": config_hash(bad_config)}))
    (bad_state / "state.json").write_text("{not json")
    user = d / "userfolder"
    user.mkdir()
    (user / "holiday.jpg").write_bytes(b"mine")
    (d / "dup_layers.toml").write_text('style_layers = ["relu1_1", "relu1_1"]\n')
    (d / "no_layers.toml").write_text('style_layers = []\n')
    (d / "mutation.toml").write_text('mutation = [0.5, 3.0]\n')
    (d / "ref.toml").write_text('reference_point = "high"\n')
    (d / "fitness_loss.toml").write_text('fitness_loss = "vibes"\n')
    (d / "noise.toml").write_text('init_noise = -0.5\n')
    from torchvision.models import vgg19
    sd = vgg19(weights=None).features.state_dict()
    sd["0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(sd, d / "nan.pt")
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
    ("an empty --resume", ["--resume", ""], "--resume is an empty string; give a path"),
    ("an empty --out", ["--out", " "], "--out is an empty string; give a path"),
    ("an empty --config", ["--config", ""], "--config is an empty string; give a path"),
    ("a sample's name without sample:", ["--content", "{d}/cat.jpg"],
     "/cat.jpg; did you mean sample:cat.jpg (a bundled sample)?"),
    ("an unknown sample", ["--style", "sample:dog.jpg"], "no bundled sample image 'dog.jpg'; the samples are "
                                                         "sample:cat.jpg, sample:great_wave.jpg"),
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
    ("popsize too small", ["--popsize", "3"], "population (--population, --popsize) must be an integer in [5, "),
    ("negative weight", ["--diversity-weight", "-1"], "diversity-weight must be finite and >= 0"),
    ("outputs < 1", ["--outputs", "0"], "outputs must be an integer in [1, 1,024], got 0"),
    ("steps <= 0", ["--steps", "0"], "steps must be an integer >= 1"),
    ("unwritable out", ["--out", "{d}/afile/run"], "cannot write to output directory"),
    ("unknown config key", ["--config", "{d}/unknown.toml"], "unknown config key 'colour'"),
    ("wrong config type", ["--config", "{d}/types.toml"], "config key 'popsize' must be an integer"),
    ("wrong config bool", ["--config", "{d}/bool.toml"], "config key 'compile' must be true, false or \"auto\""),
    ("broken toml", ["--config", "{d}/broken.toml"], "is not valid TOML"),
    ("weights not VGG", ["--weights", "{d}/notvgg.pt"], "is not a VGG19 or VGG16 convolutional base"),
    ("missing resume state", ["--resume", "{d}/emptyrun"], "is missing"),
    ("corrupt resume state", ["--resume", "{d}/badstate"], "corrupt"),
    ("unknown device", ["--device", "tpu"], "unknown device"),
    ("unknown precision", ["--precision", "fp8"], "unknown precision 'fp8'"),
    ("unknown search group", ["--search", "colours"], "unknown search group 'colours'"),
    ("too small for the layers", ["--size", "16"], "too small for layer relu5_1"),
    ("mix with one style", ["--style", STARRY, "--search", "angles", "mix"], "needs at least 2 style images (--style)"),
    ("fraction bounds outside [0, 1]", ["--bounds", "mix=0,2"], "bounds [0, 2] leave its domain [0, 1]"),
    ("negative rotation weight bound", ["--search", "angles", "rotation_weight", "--bounds", "rotation_weight=-0.5,1"],
     "leave its domain [0, 1]"),
    ("log bounds at 0", ["--search", "layers", "--bounds", "layers=0,2"], "log-scale bounds must be > 0"),
    ("duplicate style layers", ["--config", "{d}/dup_layers.toml"], "style-layers lists relu1_1 more than once"),
    ("empty style layers", ["--config", "{d}/no_layers.toml"], "style-layers is empty; name at least one layer"),
    ("duplicate search group", ["--search", "angles", "angles"], "search lists angles more than once"),
    ("empty content path", ["--content", ""], "--content is an empty string"),
    ("empty style path", ["--style", ""], "--style is an empty string"),
    ("negative seed", ["--seed", "-1"], "seed must be an integer in [0, "),
    ("too many outputs", ["--outputs", "5000"], "outputs must be an integer in [1, 1,024], got 5000"),
    ("NaN learning rate", ["--lr", "nan"], "lr must be a positive number"),
    ("NaN reference point", ["--reference-point", "nan", "0"], "reference-point must be two finite numbers"),
    ("pareto with scipy", ["--objective", "pareto", "--optimizer", "scipy-de"], "scipy-de has no multi-objective"),
    ("pareto with a best strategy", ["--objective", "pareto", "--strategy", "best1bin"], "runs GDE3, which takes"),
    ("dfr with a fixed 45 degrees", ["--rotation-mode", "dfr", "--fix", "angle_0=45"],
     "angle_0: rotation mode 'dfr' takes angles 0, 90, 180 or 270, got 45"),
    ("resume with another --out", ["--resume", "{d}/badstate", "--out", "{d}/other"], "drop --out"),
    ("resume a folder that is no run", ["--resume", "{d}/userfolder"], "is not an evostyle run directory"),
    ("out is a user's non-empty folder", ["--out", "{d}/userfolder"], "is not empty and does not hold an evostyle run"),
    ("overwrite a user's folder", ["--out", "{d}/userfolder", "--overwrite"], "--overwrite only replaces an evostyle"),
    ("weights with NaN", ["--weights", "{d}/nan.pt"], "has NaN or infinite values"),
    ("mutation out of range", ["--config", "{d}/mutation.toml"], "mutation must be [low, high] with 0 <= low"),
    ("reference point of the wrong type", ["--config", "{d}/ref.toml"], "must be [fidelity, diversity]"),
    ("unknown fitness loss", ["--config", "{d}/fitness_loss.toml"], "unknown fitness loss 'vibes'"),
    ("negative init noise", ["--config", "{d}/noise.toml"], "init-noise must be finite and >= 0"),
    ("zero max batch", ["--max-batch", "0"], "max-batch must be >= 1"),
    ("size too large", ["--size", "9000"], "size must be an integer in [8, 8,192], got 9000"),
    ("negative loss cap", ["--loss-cap", "-1"], "loss-cap must be a positive number"),
]


@pytest.mark.parametrize("name,extra,msg", CASES, ids=[c[0] for c in CASES])
def test_search_cli_bad_input(files, tmp_path, capsys, name, extra, msg):
    extra = [e.replace("{d}", str(files)) for e in extra]
    if "--resume" in extra:
        argv = extra
    else:
        argv = FAST + extra + ([] if "--out" in extra else ["--out", str(tmp_path / "run")])
    before = sorted(p.name for p in (files / "userfolder").iterdir())
    _check(capsys, search_main, argv, msg)
    run = tmp_path / "run"
    assert not run.exists()  # nothing is created for bad input
    assert sorted(p.name for p in (files / "userfolder").iterdir()) == before == ["holiday.jpg"]


def test_unknown_layer_through_transfer_cli(tmp_path, capsys):
    _check(capsys, transfer_main, ["--content", CAT, "--style", STARRY, "--style-layers", "relu6_1", "--out",
                                   str(tmp_path / "o"), "--weights", "random"], "unknown vgg19 layer 'relu6_1'; valid:")


@pytest.mark.parametrize("kind", ["L", "RGBA", "P", "I;16"])
def test_unusual_png_modes_work(tmp_path, random_image_file, kind):
    p = random_image_file(kind, (24, 32), f"img_{kind.replace(';', '')}.png")
    assert transfer_main(["--content", str(p), "--style", STARRY, "--size", "32", "--steps", "1", "--weights",
                          "random", "--device", "cpu", "--out", str(tmp_path / "o")]) == 0


def test_debug_shows_traceback(tmp_path):
    from evostyle.errors import EvostyleError
    with pytest.raises(EvostyleError):
        search_main(FAST + ["--measure", "cosine", "--debug", "--out", str(tmp_path / "r")])
