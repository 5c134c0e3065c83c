"""filterbank.train.run, piece by piece: names, model arguments, preprocessing, optimizers and
schedules, data set resolution, run lookup, image loading; and the demo model SimpleCNN."""

from __future__ import annotations

import os

import numpy as np
import pytest

import filterbank as fb
from filterbank import optim
from filterbank.data.datasets import FashionMNIST
from filterbank.models import SimpleCNN, get_model
from filterbank.train import CheckpointError, save_checkpoint
from filterbank.train import run as fbrun

# ------------------------------------------------------------------------ model names/args


@pytest.mark.parametrize("given,key", [("lenet5", "lenet5"), ("LeNet", "lenet5"),
                                       ("simple-cnn", "simple_cnn"), ("ResNet18", "resnet18"),
                                       ("vgg11-bn", "vgg11_bn")])
def test_model_name(given, key):
    assert fbrun.model_name(given) == key


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'resnet7' \(choose from: lenet5, "):
        fbrun.model_name("resnet7")


KWARGS = [
    ("lenet5", 1, (28, 28), 10, {"num_classes": 10, "in_channels": 1, "padding": 2}),
    ("lenet5", 3, (32, 32), 4, {"num_classes": 4, "in_channels": 3}),
    ("simple_cnn", 1, (28, 28), 10, {"num_classes": 10, "in_channels": 1, "input_size": 28}),
    ("resnet18", 3, (32, 32), 10, {"num_classes": 10, "in_channels": 3, "stem": "cifar"}),
    ("resnet18", 3, (224, 224), 1000, {"num_classes": 1000, "in_channels": 3}),
    ("vgg11", 1, (32, 32), 10, {"num_classes": 10, "in_channels": 1}),
]


@pytest.mark.parametrize("name,c,size,k,want", KWARGS, ids=[f"{r[0]}-{r[2][0]}" for r in KWARGS])
def test_model_kwargs(name, c, size, k, want):
    assert fbrun.model_kwargs(name, c, size, k) == want


def test_model_kwargs_errors_and_extra():
    with pytest.raises(ValueError, match="'lenet5' takes 28x28 or 32x32 images, got 30x30"):
        fbrun.model_kwargs("lenet5", 1, (30, 30), 10)
    with pytest.raises(ValueError, match="square images, got 28x32"):
        fbrun.model_kwargs("simple_cnn", 1, (28, 32), 10)
    assert fbrun.model_kwargs("simple_cnn", 1, (28, 28), 10, {"width": 8})["width"] == 8
    with pytest.raises(TypeError, match="model 'lenet5' does not accept these arguments"):
        fbrun.build_model("lenet5", {"stem": "cifar"})


def test_parse_model_args_and_augment():
    assert fbrun.parse_model_args(["width=16", "dropout=0.5", "name=abc", "bn=true"]) == \
        {"width": 16, "dropout": 0.5, "name": "abc", "bn": True}
    with pytest.raises(ValueError, match="KEY=VALUE, got 'width'"):
        fbrun.parse_model_args(["width"])
    assert fbrun.parse_augment("flip, Crop") == ["flip", "crop"]
    assert fbrun.parse_augment(None) == []
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        fbrun.parse_augment("flip,blur")


# ------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("shape", [(50, 6, 5), (40, 4, 4, 3)])
def test_channel_stats_are_the_exact_moments(shape):
    data = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    idx = np.array([3, 1, 7, 20])
    mean, std = fbrun.channel_stats(data, idx)
    x = data[idx].astype(np.float64) / 255
    x = x.reshape(len(idx), -1, 1 if len(shape) == 3 else 3)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1)), atol=1e-6)
    np.testing.assert_allclose(std, x.std(axis=(0, 1)), atol=1e-6)


def test_transform_normalises_as_documented():
    pre = {"channels": 2, "size": [4, 6], "mean": [0.5, 0.25], "std": [0.5, 0.125]}
    batch = np.random.default_rng(1).integers(0, 256, (3, 4, 6, 2), dtype=np.uint8)
    y = fbrun.make_transform(pre)(batch, batched=True)
    y = y.data if isinstance(y, fb.Tensor) else y
    want = (batch.transpose(0, 3, 1, 2) / 255.0 - np.array([0.5, 0.25])[:, None, None]) \
        / np.array([0.5, 0.125])[:, None, None]
    assert y.dtype == np.float32 and y.shape == (3, 2, 4, 6)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_transform_resize_and_augment_keep_shape_and_dtype():
    pre = {"channels": 1, "size": [32, 32], "resize": True, "mean": [0.0], "std": [1.0]}
    batch = np.full((5, 28, 28, 1), 255, np.uint8)
    y = fbrun.make_transform(pre, ["flip", "crop", "affine", "erase"])(
        batch, generator=np.random.default_rng(0), batched=True)
    y = y.data if isinstance(y, fb.Tensor) else y
    assert y.shape == (5, 1, 32, 32) and y.dtype == np.float32
    plain = fbrun.make_transform(pre)(batch, batched=True)
    np.testing.assert_allclose(plain.data if isinstance(plain, fb.Tensor) else plain, 1.0,
                               atol=1e-6)  # bilinear resize of a constant image


# -------------------------------------------------------------------- optimizer, schedule
@pytest.mark.parametrize("name,cls,lr", [("sgd", optim.SGD, 0.05), ("adam", optim.Adam, 1e-3),
                                         ("adamw", optim.AdamW, 1e-3),
                                         ("rmsprop", optim.RMSprop, 1e-3),
                                         ("adagrad", optim.Adagrad, 1e-2)])
def test_build_optimizer(name, cls, lr):
    p = [fb.nn.Parameter(fb.zeros(3))]
    opt = fbrun.build_optimizer(name.upper() if name == "sgd" else name, p, None, 0.9, None)
    assert type(opt) is cls and opt.param_groups[0]["lr"] == lr
    assert fbrun.build_optimizer(name, p, 0.5, 0.9, 1e-4).param_groups[0]["weight_decay"] == 1e-4


def test_build_optimizer_errors():
    p = [fb.nn.Parameter(fb.zeros(3))]
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        fbrun.build_optimizer("lbfgs", p, None, 0.9, None)
    with pytest.raises(ValueError, match="--lr must be > 0"):
        fbrun.build_optimizer("sgd", p, 0.0, 0.9, None)


@pytest.mark.parametrize("schedule,cls,interval", [
    ("step", "StepLR", "epoch"), ("cosine", "CosineAnnealingLR", "step"),
    ("onecycle", "OneCycleLR", "step"), ("plateau", "ReduceLROnPlateau", "epoch")])
@pytest.mark.parametrize("opt_name", ["sgd", "adam", "adagrad"])
def test_build_schedule(schedule, cls, interval, opt_name):
    opt = fbrun.build_optimizer(opt_name, [fb.nn.Parameter(fb.zeros(3))], 0.1, 0.9, None)
    cb = fbrun.build_schedule(schedule, opt, epochs=3, steps_per_epoch=5)
    assert type(cb.scheduler).__name__ == cls and cb.interval == interval
    if interval == "step":  # the whole run fits the schedule, ending near zero
        for _ in range(15):
            opt.step()
            cb.scheduler.step()
        assert opt.param_groups[0]["lr"] < 0.1 / 20
    assert fbrun.build_schedule("none", opt, 3, 5) is None
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        fbrun.build_schedule("linear", opt, 3, 5)


@pytest.mark.parametrize("epochs, steps, warmup", [(2, 2, None), (1, 4, None), (3, 5, 1)])
def test_one_cycle_with_a_one_step_warm_up(epochs, steps, warmup):
    """2 epochs of 2 batches (train --limit 200) made a one-step warm-up, a 0/0 in
    OneCycleLR's first phase: ZeroDivisionError and a traceback before the run started."""
    opt = fbrun.build_optimizer("adam", [fb.nn.Parameter(fb.zeros(3))], 0.1, 0.9, None)
    cb = fbrun.build_schedule("onecycle", opt, epochs, steps, warmup_steps=warmup)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(epochs * steps):
        opt.step()
        cb.scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    used = lrs[:-1]  # the rate after the last step is never used
    assert max(used) <= 0.1 and used[-1] < 0.1 / 20


# --------------------------------------------------------------------------- data sets
@pytest.fixture
def no_full_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTERBANK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    return tmp_path


def test_fashion_mnist_falls_back_to_the_sample_and_says_so(no_full_data):
    notes = []
    name, train, test = fbrun.load_dataset("Fashion_MNIST", log=notes.append)
    assert name == "fashion-mnist-sample" and (len(train), len(test)) == (6000, 1000)
    assert len(notes) == 1 and "embedded sample" in notes[0]
    assert str(no_full_data / "data") in notes[0]  # where it looked


def test_failed_download_falls_back_too(no_full_data, monkeypatch):
    from filterbank.data.datasets import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("could not download x from any mirror:\n  url: offline")

    monkeypatch.setattr("filterbank.data.datasets.fashion_mnist.download_url", offline)
    notes = []
    name, _, _ = fbrun.load_dataset("fashion-mnist", download=True, log=notes.append)
    assert name == "fashion-mnist-sample" and "download failed" in notes[0]


def test_other_data_sets_do_not_fall_back(no_full_data):
    with pytest.raises(FileNotFoundError, match="--download"):
        fbrun.load_dataset("mnist", log=print)
    with pytest.raises(ValueError, match=r"unknown data set 'svhn' \(choose from: "):
        fbrun.load_dataset("svhn")


def test_sample_resolves_directly():
    notes = []
    name, train, _ = fbrun.load_dataset("fashion-mnist-sample", log=notes.append)
    assert name == "fashion-mnist-sample" and notes == []
    assert fbrun.image_geometry(train) == (1, (28, 28))


# ------------------------------------------------------------------------------ runs
def test_find_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        fbrun.find_run(tmp_path)
    model = get_model("simple_cnn", width=2, hidden=4)
    save_checkpoint(tmp_path / "plain", model)  # a library checkpoint, no run config
    with pytest.raises(CheckpointError, match="without a run configuration"):
        fbrun.find_run(tmp_path / "plain.json")


def test_image_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.PNG", "a/b/y.jpg", "a/readme.md"):
        (tmp_path / name).write_bytes(b"")
    files = fbrun.image_files([tmp_path / "a"])
    assert [f.name for f in files] == ["y.jpg", "x.PNG"]  # recursive, sorted by path, images
    with pytest.raises(FileNotFoundError, match="missing.png: no such file or folder"):
        fbrun.image_files([tmp_path / "missing.png"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_image_files_names_what_is_not_a_file(tmp_path):
    """predict with a FIFO or a link to /dev/zero said "no such file or folder"."""
    os.mkfifo(tmp_path / "fifo.png")
    os.symlink(os.devnull, tmp_path / "null.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    with pytest.raises(ValueError, match="fifo.png: expected a regular file, got a FIFO"):
        fbrun.image_files([tmp_path / "fifo.png"])
    with pytest.raises(ValueError, match="null.png: expected a regular file, got a character "
                                         "device"):
        fbrun.image_files([tmp_path / "null.png"])
    with pytest.raises(FileNotFoundError, match="dangling.png: a link to .*gone.png, which "
                                                "does not exist"):
        fbrun.image_files([tmp_path / "dangling.png"])


def test_image_files_empty_folder(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files in this folder"):
        fbrun.image_files([tmp_path / "e"])


def test_load_images_converts_channels_and_size(tmp_path):
    from PIL import Image

    rgb = np.zeros((20, 10, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: grey level 0.299 * 255 (ITU-R 601-2, Pillow's "L")
    Image.fromarray(rgb).save(tmp_path / "red.png")
    out = fbrun.load_images([tmp_path / "red.png"], {"channels": 1, "size": [8, 4]})
    assert out.shape == (1, 8, 4, 1) and out.dtype == np.uint8
    assert np.all(out == 76)
    out3 = fbrun.load_images([tmp_path / "red.png"], {"channels": 3, "size": [20, 10]})
    np.testing.assert_array_equal(out3[0], rgb)
    (tmp_path / "bad.png").write_text("no")
    with pytest.raises(ValueError, match="not an image Pillow can read"):
        fbrun.load_images([tmp_path / "bad.png"], {"channels": 1, "size": [8, 4]})


# -------------------------------------------------------------------- the demo model
def test_simple_cnn_shapes_and_count():
    fb.manual_seed(0)
    model = SimpleCNN()
    assert model.num_parameters() == 313_202
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model(fb.zeros(2, 1, 28, 28)).shape == (2, 10)
    small = get_model("simple_cnn", num_classes=3, in_channels=3, input_size=32, width=4,
                      hidden=8)
    assert small(fb.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert small.fc1.in_features == 8 * 8 * 8


def test_simple_cnn_errors():
    with pytest.raises(ValueError, match="multiple of 4"):
        SimpleCNN(input_size=30)
    with pytest.raises(ValueError, match="width must be a positive int, got 0"):
        SimpleCNN(width=0)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, 28, 28\), got "
                                         r"\(1, 1, 32, 32\)"):
        SimpleCNN()(fb.zeros(1, 1, 32, 32))


def test_simple_cnn_matches_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    fb.manual_seed(1)
    model = SimpleCNN(num_classes=5, in_channels=2, input_size=12, width=4, hidden=16)
    ref = tnn.Sequential(
        tnn.Conv2d(2, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU(),
        tnn.MaxPool2d(2), tnn.Conv2d(4, 8, 3, padding=1, bias=False), tnn.BatchNorm2d(8),
        tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(72, 16), tnn.ReLU(),
        tnn.Dropout(0.25), tnn.Linear(16, 5))
    names = {"conv1": 0, "bn1": 1, "conv2": 4, "bn2": 5, "fc1": 9, "fc2": 12}
    state = {f"{names[k.split('.')[0]]}.{k.split('.', 1)[1]}": torch.from_numpy(np.array(v))
             for k, v in model.state_dict().items()}
    ref.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((3, 2, 12, 12)).astype(np.float32)
    for train in (False, True):  # eval: running stats; train: batch stats (dropout off)
        model.train(train)
        ref.train(train)
        model.dropout.p = ref[11].p = 0.0
        got = model(fb.tensor(x)).data
        want = ref(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, abs(want).max()))


@pytest.mark.parametrize("module", ["filterbank.train.info", "filterbank.train.inference",
                                    "filterbank.train.finetune", "filterbank.models.simple"])
def test_docstring_examples(module):
    import doctest
    import importlib

    if isinstance(module, str):
        module = importlib.import_module(module)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------- resuming with more epochs
@pytest.mark.parametrize("schedule,opt_name", [("onecycle", "adam"), ("onecycle", "sgd"),
                                               ("cosine", "adam"), ("step", "sgd")])
def test_extended_schedule_is_the_longer_one_fast_forwarded(schedule, opt_name):
    """Rule: rebuilt over the new total, fast-forwarded to the step reached (one-cycle keeps
    its warm-up length)."""
    steps, planned, longer = 5, 2, 5
    interval = 1 if schedule == "step" else steps  # scheduler steps per epoch
    warmup = fbrun.ONECYCLE_WARMUP * planned * steps

    def make(epochs):
        p = fb.nn.Parameter(fb.zeros(3))
        opt = fbrun.build_optimizer(opt_name, [p], 0.1, 0.9, None)
        return opt, fbrun.build_schedule(schedule, opt, epochs, steps, warmup_steps=warmup)

    # the original run: planned epochs, all steps taken; its state is what a checkpoint holds
    opt, cb = make(planned)
    for _ in range(planned * interval):
        cb.scheduler.step()
    saved_opt, saved_sched = opt.state_dict(), cb.scheduler.state_dict()
    # resumed with more epochs: fresh objects for the new total, then the checkpoint is loaded
    opt2, cb2 = make(longer)
    ext = fbrun.ExtendedSchedule(cb2, log=lambda s: None)
    opt2.load_state_dict(saved_opt)
    cb2.scheduler.load_state_dict(saved_sched)
    ext.on_train_begin(trainer=None)
    # reference: a run planned for the longer total from the start (same warm-up steps)
    opt3, cb3 = make(longer)
    for _ in range(planned * interval):
        cb3.scheduler.step()
    for _ in range(3):  # and they go on identically
        assert opt2.param_groups[0]["lr"] == pytest.approx(opt3.param_groups[0]["lr"], rel=1e-12)
        for key in ("momentum", "betas"):
            if key in opt3.param_groups[0]:
                assert opt2.param_groups[0][key] == pytest.approx(opt3.param_groups[0][key])
        cb2.scheduler.step()
        cb3.scheduler.step()
    if schedule == "onecycle":
        assert cb3.scheduler._schedule_phases[0]["end_step"] == pytest.approx(warmup - 1)


# --------------------------------------------------------------------- image folders
def _png(path, size, mode="L", value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def test_image_folder_flat_mixed_sizes_grey(tmp_path):
    for c in ("cat", "dog"):
        for i in range(5):
            _png(tmp_path / "d" / c / f"{i}.png", (12, 10) if i else (20, 16), value=i)
    notes = []
    train, val, test = fbrun.load_image_folder(tmp_path / "d", log=notes.append)
    assert val is None and len(train) == 8 and len(test) == 2  # 20% of each class
    assert train.data.shape[1:] == (10, 12, 1) and train.data.dtype == np.uint8  # grey, mode
    assert train.classes == ["cat", "dog"] and "2 sizes; resizing all to 10x12" in notes[0]
    again = fbrun.load_image_folder(tmp_path / "d", log=notes.append)
    assert again[2].paths == test.paths  # the test split is the same every time
    sized = fbrun.load_image_folder(tmp_path / "d", size=(8, 8), log=notes.append)[0]
    assert sized.data.shape[1:] == (8, 8, 1) and "resizing all images to 8x8" in notes[-1]


def test_image_folder_splits_and_colour(tmp_path):
    for split in ("train", "val", "test"):
        for c in ("a", "b"):
            _png(tmp_path / split / c / "x.png", (6, 6), "RGB" if split == "val" else "L")
    train, val, test = fbrun.load_image_folder(tmp_path)
    assert train.data.shape == (2, 6, 6, 3) and len(val) == 2 and len(test) == 2  # one RGB
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        fbrun.load_image_folder(tmp_path)


def test_dataset_names_and_paths(tmp_path, monkeypatch):
    assert not fbrun.is_folder_dataset("fashion-mnist") and fbrun.is_folder_dataset("./x")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "photos").mkdir()
    assert not fbrun.is_folder_dataset("mnist")  # a data root beside you is not a data set
    assert fbrun.is_folder_dataset("photos") and fbrun.is_folder_dataset("./mnist")
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        fbrun.load_data("svhn")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        fbrun.load_data("./no/such/folder")


# ------------------------------------------------------------------------ fine-tuning
def test_freeze_patterns():
    net = get_model("lenet5")
    assert fbrun.freeze(net, ["fc1", "*.bias"], log=lambda s: None) == [
        "conv1.bias", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.bias", "fc3.bias"]
    assert not net.fc1.weight.requires_grad and net.fc2.weight.requires_grad
    with pytest.raises(ValueError, match="--freeze 'features' matches no parameter"):
        fbrun.freeze(get_model("lenet5"), "features", log=print)
    with pytest.raises(ValueError, match="freezes every parameter"):
        fbrun.freeze(get_model("lenet5"), "*", log=print)
    assert fbrun.parse_patterns(["a,b", " c "]) == ["a", "b", "c"]


def test_classifier_head():
    assert fbrun.classifier_head(get_model("lenet5", num_classes=7), 7)[0] == "fc3"
    assert fbrun.classifier_head(get_model("resnet18", num_classes=7), 7)[0] == "fc"
    assert fbrun.classifier_head(get_model("lenet5", num_classes=7), 3) is None


def test_init_from_reinitialises_only_the_head(tmp_path):
    fb.manual_seed(0)
    old = get_model("lenet5", num_classes=10)
    save_checkpoint(tmp_path / "m", old)
    fb.manual_seed(1)
    new = get_model("lenet5", num_classes=4)
    head_before = new.fc3.weight.data.copy()
    notes = []
    fresh = fbrun.init_from(new, tmp_path / "m", 10, 4, log=notes.append)
    assert fresh == ["fc3.weight", "fc3.bias"] and "fc3 (Linear) is re-initialised" in notes[0]
    np.testing.assert_array_equal(new.fc3.weight.data, head_before)
    np.testing.assert_array_equal(new.conv1.weight.data, old.conv1.weight.data)
    np.testing.assert_array_equal(new.fc2.weight.data, old.fc2.weight.data)
    same = get_model("lenet5", num_classes=10)
    assert fbrun.init_from(same, tmp_path / "m", 10, 10) == []
    np.testing.assert_array_equal(same.fc3.weight.data, old.fc3.weight.data)
    with pytest.raises(CheckpointError, match="do not fit the SimpleCNN"):
        fbrun.init_from(SimpleCNN(), tmp_path / "m", 10, 10)
