"""Semantic-segmentation data for Auto-DeepLab, loaded once into tensors: shapes, Cityscapes, VOC.

* ``shapes`` is **synthetic**: rotated rectangles, ellipses and triangles (classes 1-3) on textured
  noise backgrounds (class 0), drawn with numpy from the seed passed in, so CPU runs need no
  download. It is deterministic per seed and says ``synthetic: True`` in ``describe()``.
* ``cityscapes`` (Cordts et al. 2016, "The Cityscapes Dataset for Semantic Urban Scene
  Understanding"): ``leftImg8bit/{split}/{city}/*_leftImg8bit.png`` with
  ``gtFine/{split}/{city}/*_gtFine_labelIds.png``; label ids map to the 19 evaluation train ids
  (the official ``cityscapesscripts`` table), every other id to the ignore label 255.
* ``voc`` (Everingham et al. 2010, "The PASCAL Visual Object Classes (VOC) Challenge"; VOC2012
  segmentation): ``JPEGImages/*.jpg``, palette PNGs ``SegmentationClass/*.png`` (indices 0-20,
  object borders 255) and the lists ``ImageSets/Segmentation/{train,val}.txt``.

Images are float32 NCHW normalised with the training split's per-channel mean and standard
deviation; masks are int64 N×H×W with ignore label 255. Images are scaled (bilinear; nearest for
masks) so that they cover ``size``, then centre-cropped to it: deterministic, with no random crop.
There is no test split: Cityscapes and VOC publish no test labels, so ``valid`` is their ``val``.
Reading image files needs Pillow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data_cls import SeedLike, _parse_size, _require_dir, as_rng

__all__ = ["SegmentationData", "load_segmentation", "SEGMENTATION_DATASETS", "make_shapes", "IGNORE_INDEX",
           "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN", "VOC_CLASSES", "SHAPES_CLASSES"]

IGNORE_INDEX = 255

SEGMENTATION_DATASETS: dict[str, str] = {
    "shapes": "synthetic shapes (rectangles, ellipses, triangles on textured noise), generated from the seed",
    "cityscapes": "Cityscapes fine annotations (Cordts et al. 2016) from a user directory, 19 train ids",
    "voc": "PASCAL VOC 2012 segmentation (Everingham et al. 2010) from a user directory, 21 classes",
}

_DEFAULT_SIZE = {"shapes": (64, 64), "cityscapes": (128, 256), "voc": (128, 128)}

SHAPES_CLASSES = ("background", "rectangle", "ellipse", "triangle")
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
#: Cityscapes label id → train id for the 19 evaluated classes (cityscapesscripts/helpers/labels.py)
CITYSCAPES_LABEL_TO_TRAIN: dict[int, int] = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                                             23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")

_CITYSCAPES_LAYOUT = ("leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png and "
                      "gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png (the leftImg8bit_trainvaltest.zip and "
                      "gtFine_trainvaltest.zip layout)")
_VOC_LAYOUT = ("JPEGImages/<id>.jpg, SegmentationClass/<id>.png (palette PNGs: class indices 0-20, border 255) and "
               "ImageSets/Segmentation/train.txt + val.txt listing the ids (VOCdevkit/VOC2012 layout)")


@dataclass(frozen=True, eq=False)
class SegmentationData:
    """Train/validation images and masks of one segmentation set.

    ``x_*``: float32 ``N×3×H×W``, normalised with the training split's per-channel ``mean``/``std``;
    ``y_*``: int64 ``N×H×W`` in ``0..num_classes-1`` or ``ignore_index`` (255).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    source: str
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX
    synthetic: bool = False
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes, class names, normalisation and provenance, JSON-serialisable."""
        return {"name": self.name, "task": "segmentation", "source": self.source, "synthetic": self.synthetic,
                "num_classes": self.num_classes, "class_names": list(self.class_names),
                "ignore_index": self.ignore_index, "input_shape": list(self.input_shape),
                "n_train": int(self.y_train.shape[0]), "n_valid": int(self.y_valid.shape[0]),
                "mean": list(self.mean), "std": list(self.std), **self.info}

    def to(self, device: str | torch.device) -> SegmentationData:
        """A copy with every tensor moved to ``device``."""
        return dataclasses.replace(self, **{f: getattr(self, f).to(device)
                                            for f in ("x_train", "y_train", "x_valid", "y_valid")})


# ----------------------------------------------------------------------------- synthetic shapes

def make_shapes(n: int, size: tuple[int, int], rng: np.random.Generator, *, max_shapes: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` synthetic images (float32 ``n×3×H×W`` in [0, 1]) and masks (int64 ``n×H×W``).

    Backgrounds (class 0): a random base colour modulated by two random sinusoidal gratings plus
    pixel noise. Each image holds 1..``max_shapes`` shapes painted in order (later ones occlude
    earlier ones), each a flat random colour with faint noise: rotated rectangles (1), rotated
    ellipses (2), triangles (3). Vectorised over images; every draw comes from ``rng``.
    """
    h, w = size
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) + 0.5, np.arange(w, dtype=np.float32) + 0.5, indexing="ij")
    yy, xx = yy[None], xx[None]  # 1×H×W, broadcast against per-image parameters n×1×1

    def col(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)[:, None, None]

    base = np.asarray(rng.uniform(0.2, 0.8, (n, 3)), dtype=np.float32)
    texture = np.zeros((n, h, w), np.float32)
    for _ in range(2):
        theta, cycles, phase = rng.uniform(0, np.pi, n), rng.uniform(2, 8, n), rng.uniform(0, 2 * np.pi, n)
        proj = (xx * col(np.cos(theta)) + yy * col(np.sin(theta))) / max(h, w)
        texture += col(rng.uniform(0.05, 0.2, n)) * np.sin(2 * np.pi * col(cycles) * proj + col(phase))
    weights = np.asarray(rng.uniform(0.5, 1.0, (n, 3)), dtype=np.float32)
    images = base[:, :, None, None] + weights[:, :, None, None] * texture[:, None]
    images += np.asarray(rng.normal(0.0, 0.06, images.shape), dtype=np.float32)
    masks = np.zeros((n, h, w), np.int64)

    count = rng.integers(1, max_shapes + 1, n)
    side = float(min(h, w))
    for slot in range(max_shapes):
        active = slot < count
        cls = rng.integers(1, 4, n)
        cy, cx = rng.uniform(0.15, 0.85, n) * h, rng.uniform(0.15, 0.85, n) * w
        r = rng.uniform(0.1, 0.25, n) * side
        aspect, angle = rng.uniform(0.5, 1.0, n), rng.uniform(0, np.pi, n)
        dx, dy = xx - col(cx), yy - col(cy)
        u = dx * col(np.cos(angle)) + dy * col(np.sin(angle))
        v = -dx * col(np.sin(angle)) + dy * col(np.cos(angle))
        rr, ra = col(r), col(r * aspect)
        rect = (np.abs(u) <= rr) & (np.abs(v) <= ra)
        ellipse = (u / rr) ** 2 + (v / ra) ** 2 <= 1.0
        # triangle: vertices at angle + 2πj/3 (counter-clockwise), point inside iff all edge tests agree
        ang = angle[:, None] + 2 * np.pi * np.arange(3) / 3 + rng.uniform(-0.3, 0.3, (n, 3))
        vx, vy = cx[:, None] + r[:, None] * np.cos(ang), cy[:, None] + r[:, None] * np.sin(ang)
        edges = []
        for j in range(3):
            k = (j + 1) % 3
            ex, ey = col(vx[:, k] - vx[:, j]), col(vy[:, k] - vy[:, j])
            edges.append(ex * (yy - col(vy[:, j])) - ey * (xx - col(vx[:, j])))
        e = np.stack(edges)
        triangle = (e >= 0).all(0) | (e <= 0).all(0)
        inside = np.where(col(cls) == 1, rect, np.where(col(cls) == 2, ellipse, triangle)) & col(active).astype(bool)
        colour = np.asarray(rng.uniform(0.0, 1.0, (n, 3)), dtype=np.float32)
        paint = colour[:, :, None, None] + np.asarray(rng.normal(0.0, 0.02, images.shape), dtype=np.float32)
        images = np.where(inside[:, None], paint, images)
        masks = np.where(inside, cls[:, None, None], masks)
    return np.clip(images, 0.0, 1.0).astype(np.float32), masks.astype(np.int64)


# ----------------------------------------------------------------------------- folder readers

def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow ships with matplotlib
        raise ValueError("reading Cityscapes/VOC image files needs Pillow: pip install pillow") from e
    return Image


def _fit(img: Any, size: tuple[int, int], resample: Any) -> np.ndarray:
    """Scale ``img`` (aspect kept) to cover ``size`` = (H, W), then centre-crop to it."""
    h, w = size
    iw, ih = img.size
    scale = max(h / ih, w / iw)
    nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
    if (nw, nh) != (iw, ih):
        img = img.resize((nw, nh), resample)
    top, left = (nh - h) // 2, (nw - w) // 2
    return np.asarray(img.crop((left, top, left + w, top + h)))


def _read_pairs(name: str, pairs: list[tuple[Path, Path]], size: tuple[int, int], lut: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Read (image, mask) files into uint8 n×3×H×W images and int64 n×H×W masks (an I/O loop)."""
    image_mod = _pil()
    images = np.empty((len(pairs), 3, *size), np.uint8)
    masks = np.empty((len(pairs), *size), np.int64)
    for i, (ip, mp) in enumerate(pairs):
        with image_mod.open(ip) as im:
            images[i] = _fit(im.convert("RGB"), size, image_mod.Resampling.BILINEAR).transpose(2, 0, 1)
        with image_mod.open(mp) as m:
            if m.mode not in ("P", "L"):
                raise ValueError(f"{name}: mask {mp} has PIL mode {m.mode!r}; expected a palette ('P') or 8-bit "
                                 "grey ('L') PNG of class indices, as released")
            ids = _fit(m, size, image_mod.Resampling.NEAREST).astype(np.int64)
        masks[i] = lut[ids] if lut is not None else ids
    return images, masks


def _pick(items: list[Any], cap: int | None, rng: np.random.Generator) -> list[Any]:
    """All items (sorted order), or a seeded sample of ``cap`` of them kept in sorted order."""
    if cap is None or cap >= len(items):
        return items
    return [items[i] for i in np.sort(rng.choice(len(items), cap, replace=False))]


def _cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for d in (img_dir, gt_dir):
        if not d.is_dir():
            raise ValueError(f"cityscapes: {str(d)!r} is missing; expected under root {_CITYSCAPES_LAYOUT}")
    images = sorted(img_dir.glob("*/*_leftImg8bit.png"))
    if not images:
        raise ValueError(f"cityscapes: no */*_leftImg8bit.png under {str(img_dir)!r}; expected {_CITYSCAPES_LAYOUT}")
    pairs = [(p, gt_dir / p.parent.name / p.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")) for p in images]
    missing = [str(m) for _, m in pairs if not m.is_file()]
    if missing:
        raise ValueError(f"cityscapes: {len(missing)} label files are missing, e.g. {missing[:3]}; "
                         f"expected {_CITYSCAPES_LAYOUT}")
    return pairs


def _voc_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise ValueError(f"voc: {str(listing)!r} is missing; expected under root {_VOC_LAYOUT}")
    ids = [s.strip() for s in listing.read_text().splitlines() if s.strip()]
    if not ids:
        raise ValueError(f"voc: {listing} lists no image ids")
    pairs = [(root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png") for i in ids]
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if missing:
        raise ValueError(f"voc: {len(missing)} files listed in {listing} are missing, e.g. {missing[:3]}; "
                         f"expected {_VOC_LAYOUT}")
    return pairs


def _voc_root(root: Path) -> Path:
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (cand / "ImageSets" / "Segmentation").is_dir():
            return cand
    raise ValueError(f"voc: no ImageSets/Segmentation under {str(root)!r} (nor VOC2012/ or VOCdevkit/VOC2012/); "
                     f"expected {_VOC_LAYOUT}")


# ----------------------------------------------------------------------------- assembly

def _check_count(field_name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{field_name}={value!r} must be None or a positive int (a number of images)")


def load_segmentation(name: str, *, root: str | Path | None = None, seed: SeedLike = 0,
                      size: int | Sequence[int] | None = None, n: int | None = None,
                      n_valid: int | None = None) -> SegmentationData:
    """Load a segmentation set into normalised tensors.

    Args:
        name: one of :data:`SEGMENTATION_DATASETS` (``shapes``, ``cityscapes``, ``voc``).
        root: the Cityscapes folder (holding ``leftImg8bit/`` and ``gtFine/``) or the VOC2012 folder
            (or a parent holding ``VOCdevkit/VOC2012``); must be None for ``shapes``.
        seed: int, ``SeedSequence`` or ``Generator``: draws the shapes, or picks the ``n`` images.
        size: output (H, W), or an int for a square. Defaults: shapes 64×64, cityscapes 128×256
            (its 1:2 aspect), voc 128×128.
        n: training images: how many to draw for ``shapes`` (default 256), a seeded cap otherwise
            (default all).
        n_valid: validation images: for ``shapes`` default ``max(1, n // 4)``; a cap otherwise.

    Raises:
        ValueError: unknown name (listing the known ones), a missing directory or files (naming the
            path and the expected layout), bad sizes or counts, masks that are not index PNGs.
    """
    if name not in SEGMENTATION_DATASETS:
        raise ValueError(f"unknown segmentation data set {name!r}; known: {', '.join(SEGMENTATION_DATASETS)}")
    hw = _parse_size("size", size) or _DEFAULT_SIZE[name]
    _check_count("n", n)
    _check_count("n_valid", n_valid)
    rng = as_rng(seed)
    info: dict[str, Any] = {"seed": int(seed) if isinstance(seed, int | np.integer) else None, "size": list(hw)}

    if name == "shapes":
        if root is not None:
            raise ValueError(f"shapes is generated, so root must be None (got {str(root)!r})")
        n_tr = 256 if n is None else n
        n_va = max(1, n_tr // 4) if n_valid is None else n_valid
        r_tr, r_va = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=2))
        xt, yt = make_shapes(n_tr, hw, r_tr)
        xv, yv = make_shapes(n_va, hw, r_va)
        x_train, x_valid = torch.from_numpy(xt), torch.from_numpy(xv)
        classes: tuple[str, ...] = SHAPES_CLASSES
        info["generator"] = "nasatlas.evaluators.data_seg.make_shapes"
    else:
        if name == "cityscapes":
            folder = _require_dir(root, name, _CITYSCAPES_LAYOUT)
            train, valid = _cityscapes_pairs(folder, "train"), _cityscapes_pairs(folder, "val")
            lut = np.full(256, IGNORE_INDEX, np.int64)
            lut[list(CITYSCAPES_LABEL_TO_TRAIN)] = list(CITYSCAPES_LABEL_TO_TRAIN.values())
            classes = CITYSCAPES_CLASSES
        else:
            folder = _voc_root(_require_dir(root, name, _VOC_LAYOUT))
            train, valid = _voc_pairs(folder, "train"), _voc_pairs(folder, "val")
            lut = np.arange(256, dtype=np.int64)
            classes = VOC_CLASSES
        info["root"] = str(folder)
        train, valid = _pick(train, n, rng), _pick(valid, n_valid, rng)
        (it, yt), (iv, yv) = _read_pairs(name, train, hw, lut), _read_pairs(name, valid, hw, lut)
        for where, y in (("train", yt), ("val", yv)):
            bad = (y >= len(classes)) & (y != IGNORE_INDEX)
            if bad.any():
                raise ValueError(f"{name}: {where} masks hold values {sorted(set(np.unique(y[bad]).tolist()))[:10]} "
                                 f"outside 0..{len(classes) - 1} and {IGNORE_INDEX}; are they the released index PNGs?")
        x_train = torch.from_numpy(it).to(torch.float32).div_(255.0)
        x_valid = torch.from_numpy(iv).to(torch.float32).div_(255.0)
        info["files"] = {"train": len(train), "val": len(valid)}

    std, mean = torch.std_mean(x_train, dim=(0, 2, 3))
    std = std.clamp_min(1e-6)
    for t in (x_train, x_valid):
        t.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])
    return SegmentationData(
        name=name, x_train=x_train, y_train=torch.from_numpy(yt), x_valid=x_valid, y_valid=torch.from_numpy(yv),
        num_classes=len(classes), input_shape=(3, hw[0], hw[1]), source=SEGMENTATION_DATASETS[name],
        class_names=classes, synthetic=name == "shapes", mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std), info=info)
