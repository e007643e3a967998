"""Load params.yaml into frozen, validated dataclasses.

Every key must be written in params.yaml: DVC tracks only the keys that are there, so a
default hidden in code could change results without DVC noticing. An unknown key, a missing
key, a wrong type or an out-of-range value stops with one line naming the key and what is
allowed. PyYAML reads `1e-5` as a string (YAML 1.1 wants a dot in floats), yet YAML 1.2 and
`dvc exp run -S` write small numbers that way (`1e-06`): where a number is expected, such a
string is read as the number it spells.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from imgclf.core.catalogue import ENSEMBLE, cnn_name, cnn_seed, model_names
from imgclf.core.errors import ConfigError


class InvalidParam(Exception):
    """Raised by a section's checks; the loader adds the full key and the file name."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(key, value, allowed)
        self.key, self.value, self.allowed = key, value, allowed


def bounds(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> dict[str, Any]:
    """Field metadata: the value (or each item of a tuple) must lie in this range."""
    return {"low": low, "high": high, "open_low": open_low, "open_high": open_high}


def _range_text(meta: dict[str, Any]) -> str:
    parts = []
    if meta["low"] is not None:
        parts.append(f"{'>' if meta['open_low'] else '>='} {meta['low']}")
    if meta["high"] is not None:
        parts.append(f"{'<' if meta['open_high'] else '<='} {meta['high']}")
    return "a number " + " and ".join(parts)


def _in_range(value: float, meta: dict[str, Any]) -> bool:
    low, high = meta["low"], meta["high"]
    if low is not None and (value <= low if meta["open_low"] else value < low):
        return False
    return not (high is not None and (value >= high if meta["open_high"] else value > high))


class Section:
    """Base of every params section: checks field bounds, then the section's own `check`."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            if "low" not in spec.metadata:
                continue
            value = getattr(self, spec.name)
            items = value if isinstance(value, tuple) else (value,)
            if not all(_in_range(item, spec.metadata) for item in items):
                raise InvalidParam(spec.name, value, _range_text(spec.metadata))
        self.check()

    def check(self) -> None:
        """Cross-field checks; raise `InvalidParam` naming the field."""


@dataclass(frozen=True)
class BaseParams(Section):
    """Settings shared by every stage."""

    seed: int = field(metadata=bounds(0))
    # [height, width] of every packed image; a single number means a square.
    image_size: int | tuple[int, int] = field(metadata=bounds(8, 4096))
    # Repeatable CPU training (op determinism); costs speed: docs/benchmarks.md.
    deterministic: bool

    def __post_init__(self) -> None:
        if isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", (self.image_size, self.image_size))
        super().__post_init__()


LabelSource = Literal["folder", "filename", "csv"]


@dataclass(frozen=True)
class DataParams(Section):
    """Where the images are and how their labels are found (stage `index`)."""

    source: str
    labels: LabelSource
    pattern: str  # regex with a (?P<label>...) group, searched in the file name
    manifest: str  # CSV with columns path,label, relative to `source`
    max_rejected: float = field(metadata=bounds(0.0, 1.0))
    # The dataset's own split: train/ val/ test/ folders above the usual layout, or a
    # `split` column in the CSV manifest (val may be absent: carved from train).
    predefined: bool

    def check(self) -> None:
        if not self.source:
            raise InvalidParam("source", self.source, "the path of an image folder")
        if self.labels == "filename":
            try:
                compiled = re.compile(self.pattern)
            except re.error as error:
                raise InvalidParam("pattern", self.pattern, f"a valid regex ({error})") from None
            if "label" not in compiled.groupindex:
                raise InvalidParam("pattern", self.pattern, "a regex with a (?P<label>...) group")
        if self.labels == "csv":
            path = PurePosixPath(self.manifest)
            if not self.manifest or path.is_absolute() or ".." in path.parts:
                raise InvalidParam(
                    "manifest", self.manifest, "a CSV file path inside data.source, relative to it"
                )


@dataclass(frozen=True)
class SplitParams(Section):
    """Stratified train/val/test split: a fraction (0 < f < 1) or a count of images (>= 1)."""

    val: int | float = field(metadata=bounds(0, open_low=True))
    test: int | float = field(metadata=bounds(0, open_low=True))
    # Keep each group of duplicates (same pixels, or perceptual hashes within near_distance
    # bits) in one split, so that no copy of a test image is trained on.
    group_duplicates: bool
    near_distance: int = field(metadata=bounds(0, 16))

    def check(self) -> None:
        for name in ("val", "test"):
            value = getattr(self, name)
            if isinstance(value, float) and value >= 1:
                raise InvalidParam(name, value, "a fraction in (0, 1) or a whole count >= 1")
        if (
            isinstance(self.val, float)
            and isinstance(self.test, float)
            and self.val + self.test >= 1
        ):
            raise InvalidParam(
                "val", self.val, f"a fraction with val + test < 1 (test is {self.test})"
            )


Interpolation = Literal["area", "linear", "cubic"]


@dataclass(frozen=True)
class PackParams(Section):
    """How images are resized and written to HDF5 (stage `pack`)."""

    # Images per HDF5 chunk and per write; memory holds about two such batches.
    batch_size: int = field(metadata=bounds(1, 100_000))
    interpolation: Interpolation


Architecture = Literal["minivggnet", "alexnet", "minigooglenet", "resnet"]


# balanced: weight each class by n / (classes * its count) in the loss (scikit-learn's rule).
ClassWeight = Literal["none", "balanced"]
# Which epoch's model a training run keeps: the last (a fixed epoch count, so that val is
# left to choose between models), or the best on val (which lends val's noise to the model's
# own val score: a max over epochs flatters it against models that did not get one).
KeepEpoch = Literal["last", "best_val"]


@dataclass(frozen=True)
class OptimizerParams(Section):
    """Optimizer and its base learning rate (momentum and nesterov apply to SGD)."""

    name: Literal["sgd", "adam", "rmsprop"]
    lr: float = field(metadata=bounds(0, 10, open_low=True))
    momentum: float = field(metadata=bounds(0, 1, open_high=True))
    nesterov: bool


@dataclass(frozen=True)
class ScheduleParams(Section):
    """Learning-rate schedule over the run: constant, step decay, or polynomial decay."""

    name: Literal["constant", "step", "polynomial"]
    power: float = field(metadata=bounds(0))  # polynomial: 1.0 is linear decay to 0
    factor: float = field(metadata=bounds(0, 1, open_low=True))  # step: multiply by this
    every: int = field(metadata=bounds(1))  # step: every this many epochs


@dataclass(frozen=True)
class AugmentParams(Section):
    """The book's ImageDataGenerator settings as Keras layers; 0 turns one off."""

    rotation: float = field(metadata=bounds(0, 180))  # degrees
    shift: float = field(metadata=bounds(0, 1, open_high=True))  # fraction of width/height
    # Degrees, as modern Keras reads it; RandomShear takes tan(angle), at most 1: 45 degrees.
    shear: float = field(metadata=bounds(0, 45))
    zoom: float = field(metadata=bounds(0, 1, open_high=True))  # +- fraction


@dataclass(frozen=True)
class CnnParams(Section):
    """CNNs trained from scratch, one per seed (stage `cnn`)."""

    arch: Architecture
    seeds: tuple[int, ...] = field(metadata=bounds(0))
    crop: tuple[int, int] = field(metadata=bounds(8, 4096))  # random patches in training
    preprocessing: Literal["mean", "scale"]  # subtract means.json, or divide by 255
    epochs: int = field(metadata=bounds(1, 100_000))
    batch_size: int = field(metadata=bounds(1, 100_000))
    l2: float = field(metadata=bounds(0, 1))
    cache_mb: int = field(metadata=bounds(0))  # keep the train pack in memory up to this size
    optimizer: OptimizerParams
    schedule: ScheduleParams
    augment: AugmentParams
    class_weight: ClassWeight
    keep_epoch: KeepEpoch

    def check(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise InvalidParam("seeds", list(self.seeds), "a non-empty list of distinct seeds")


@dataclass(frozen=True)
class PretrainParams(Section):
    """Training the backbone on a source image folder (`backbone.weights: pretrain`)."""

    # The class-per-subfolder image folder to pretrain on, disjoint from data.source, as a
    # list: [] unless backbone.weights is pretrain, so that DVC has no pretraining stages
    # (and reads no folder for them) when they are not needed.
    sources: tuple[str, ...]
    val: float = field(metadata=bounds(0, 1, open_low=True, open_high=True))
    epochs: int = field(metadata=bounds(1, 100_000))
    batch_size: int = field(metadata=bounds(1, 100_000))
    l2: float = field(metadata=bounds(0, 1))
    optimizer: OptimizerParams
    schedule: ScheduleParams
    augment: AugmentParams


BackboneArch = Literal[
    "resnet50",
    "vgg16",
    "mobilenet_v2",
    "efficientnet_b0",
    "minivggnet",
    "alexnet",
    "minigooglenet",
    "resnet",
]


@dataclass(frozen=True)
class BackboneParams(Section):
    """The pretrained body shared by `features` and `finetune` (stage `backbone`)."""

    arch: BackboneArch
    # imagenet | pretrain | none | a weights file (.weights.h5, or a Keras *_notop.h5)
    weights: str
    pretrain: PretrainParams

    def check(self) -> None:
        if not self.weights:
            raise InvalidParam(
                "weights", self.weights, "imagenet, pretrain, none or a weights file path"
            )
        sources = list(self.pretrain.sources)
        if self.weights == "pretrain" and len(sources) != 1:
            raise InvalidParam("pretrain.sources", sources, "one folder, e.g. [data/source]")
        if self.weights != "pretrain" and sources:
            raise InvalidParam(
                "pretrain.sources",
                sources,
                f"[] with weights = {self.weights} (DVC would read the folder for nothing)",
            )


Pooling = Literal["avg", "max", "flatten"]


@dataclass(frozen=True)
class FeaturesParams(Section):
    """Batched inference of the backbone over the packs (stage `features`)."""

    batch_size: int = field(metadata=bounds(1, 100_000))
    # avg: one value per channel (ResNet50's 2048-d, ch. 9) | max | flatten: the whole
    # map (VGG16's 7x7x512 = 25,088-d, ch. 3)
    pooling: Pooling
    jit_compile: bool  # XLA: faster for some archs on CPU, slower for others; see bench/


@dataclass(frozen=True)
class LogregParams(Section):
    """Logistic regression on the features, C chosen by grid search (stage `logreg`)."""

    C: tuple[float, ...] = field(metadata=bounds(0, open_low=True))
    select: Literal["cv", "val"]  # cross-validation on train (book), or accuracy on val
    folds: int = field(metadata=bounds(2, 100))
    max_iter: int = field(metadata=bounds(1))
    class_weight: ClassWeight

    def check(self) -> None:
        if not self.C:
            raise InvalidParam("C", list(self.C), "a non-empty list of positive numbers")


@dataclass(frozen=True)
class FinetuneParams(Section):
    """A new head on the backbone: warm-up, then the top layers unfrozen (stage `finetune`)."""

    pooling: Pooling  # how the head reduces the backbone's map (the book's head flattens)
    hidden: int = field(metadata=bounds(1))
    dropout: float = field(metadata=bounds(0, 1, open_high=True))
    batch_size: int = field(metadata=bounds(1, 100_000))
    warmup_epochs: int = field(metadata=bounds(1, 100_000))
    warmup_optimizer: OptimizerParams
    unfreeze: int = field(metadata=bounds(0))  # top backbone layers trained in phase 2
    epochs: int = field(metadata=bounds(1, 100_000))
    optimizer: OptimizerParams
    augment: AugmentParams
    class_weight: ClassWeight
    keep_epoch: KeepEpoch  # in both phases


@dataclass(frozen=True)
class DistributeParams(Section):
    """How the training stages (`cnn`, `finetune`) spread over devices and machines."""

    # default: one device | mirrored: every GPU (or logical CPU) of this machine |
    # multi_worker: several machines, described by the TF_CONFIG environment variable
    strategy: Literal["default", "mirrored", "multi_worker"]


@dataclass(frozen=True)
class PredictParams(Section):
    """How models predict val and test (stages `predict_*`)."""

    crops: Literal[1, 10]  # centre crop, or the book's 10-crop over-sampling (ch. 10)
    batch_size: int = field(metadata=bounds(1, 100_000))


MEMBER = re.compile(r"cnn(/seed\d+)?|finetune|logreg")


@dataclass(frozen=True)
class EnsembleParams(Section):
    """Which models' probabilities the ensemble averages (book ch. 6)."""

    # "cnn" (every seed in cnn.seeds), "cnn/seed<N>", "finetune" or "logreg"
    members: tuple[str, ...]

    def check(self) -> None:
        bad = [member for member in self.members if not MEMBER.fullmatch(member)]
        if not self.members or bad or len(set(self.members)) != len(self.members):
            raise InvalidParam(
                "members",
                list(self.members),
                "a list of distinct names: cnn, cnn/seed<N>, finetune, logreg",
            )


@dataclass(frozen=True)
class EvaluateParams(Section):
    """How the evaluation treats the models' probabilities (stages `ensemble`, `evaluate`)."""

    # temperature: fit one temperature per model on val (lowest NLL) and report test's
    # calibration before and after it; the ensemble then averages calibrated probabilities.
    calibrate: Literal["none", "temperature"]


EXPORTABLE = re.compile(r"chosen|cnn/seed\d+|finetune|logreg")


@dataclass(frozen=True)
class ExportParams(Section):
    """The model exported for serving: SavedModel and LiteRT files (stage `export`)."""

    # chosen: the best single model on val, by evaluate's rule (the ensemble is several
    # models, so it is never exported) | cnn/seed<N> | finetune | logreg
    model: str
    # train images, drawn with base.seed, that calibrate the int8 model's activation ranges
    calibration_images: int = field(metadata=bounds(1, 100_000))
    # The int8 model's quality gate, on val against its float source (stage score_export):
    # top-1 agreement at least this, accuracy at most this below the source's; past either,
    # log a warning or fail the stage (after writing the scores, so they can be looked at).
    int8_min_agreement: float = field(metadata=bounds(0, 1))
    int8_max_accuracy_drop: float = field(metadata=bounds(0, 1))
    on_int8_loss: Literal["warn", "fail"]

    def check(self) -> None:
        if not EXPORTABLE.fullmatch(self.model):
            raise InvalidParam("model", self.model, "chosen, cnn/seed<N>, finetune or logreg")


@dataclass(frozen=True)
class AuditParams(Section):
    """Duplicates, leakage, label errors and outliers over all splits (stage `audit`)."""

    # A duplicate pair across classes or across splits: log a warning, or fail the stage
    # (after writing the audit, so that the pairs can be looked at).
    on_leak: Literal["warn", "fail"]
    near_distance: int = field(metadata=bounds(0, 16))  # pHash bits, as split.near_distance
    # Datalab's near-duplicate radius on the features, relative to the median distance
    # between nearest neighbours (cleanlab's default: 0.13).
    near_threshold: float = field(metadata=bounds(0, 1, open_low=True))


@dataclass(frozen=True)
class Params(Section):
    """Everything in params.yaml."""

    base: BaseParams
    data: DataParams
    split: SplitParams
    pack: PackParams
    cnn: CnnParams
    backbone: BackboneParams
    features: FeaturesParams
    logreg: LogregParams
    finetune: FinetuneParams
    distribute: DistributeParams
    predict: PredictParams
    ensemble: EnsembleParams
    evaluate: EvaluateParams
    export: ExportParams
    audit: AuditParams

    def check(self) -> None:
        height, width = self.base.image_size
        if self.cnn.crop[0] > height or self.cnn.crop[1] > width:
            raise InvalidParam(
                "cnn.crop", list(self.cnn.crop), f"at most base.image_size = {[height, width]}"
            )
        for member in self.ensemble.members:
            if (seed := cnn_seed(member)) is not None and seed not in self.cnn.seeds:
                raise InvalidParam(
                    "ensemble.members",
                    list(self.ensemble.members),
                    f"seeds listed in cnn.seeds ({list(self.cnn.seeds)})",
                )
        if (seed := cnn_seed(self.export.model)) is not None and seed not in self.cnn.seeds:
            raise InvalidParam(
                "export.model",
                self.export.model,
                f"chosen, finetune, logreg or a seed listed in cnn.seeds ({list(self.cnn.seeds)})",
            )

    def predicted_models(self) -> list[str]:
        """Every model the pipeline makes predictions for, as named under data/predictions."""
        return model_names(self.cnn.seeds)

    def exportable_models(self) -> list[str]:
        """The models `export.model: chosen` chooses from: every single model (not the
        ensemble, which is several)."""
        return [name for name in self.predicted_models() if name != ENSEMBLE]

    def ensemble_members(self) -> list[str]:
        """The ensemble's members with "cnn" expanded to every seed, e.g. cnn/seed0."""
        names: list[str] = []
        for member in self.ensemble.members:
            expanded = [cnn_name(seed) for seed in self.cnn.seeds]
            names += expanded if member == "cnn" else [member]
        return list(dict.fromkeys(names))


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params.yaml; raise `ConfigError` with one line on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    return build_section(Params, raw, path=path)


def build_section(
    cls: type, raw: Any, *, path: Path | str = "params.yaml", prefix: str = ""
) -> Any:
    """Build dataclass `cls` from a parsed YAML mapping, validating every key."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where} must be a mapping of keys, got {raw!r}")
    names = [spec.name for spec in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names), key=str)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {prefix}{unknown[0]}; "
            f"allowed keys in {where}: {', '.join(names)}"
        )
    missing = [name for name in names if name not in raw]
    if missing:
        raise ConfigError(f"{path}: missing key {prefix}{missing[0]}")
    hints = typing.get_type_hints(cls)
    values = {name: _convert(raw[name], hints[name], f"{prefix}{name}", path) for name in names}
    try:
        return cls(**values)
    except InvalidParam as error:
        raise ConfigError(
            f"{path}: {prefix}{error.key} = {error.value!r} is not allowed; "
            f"expected {error.allowed}"
        ) from None


def _convert(value: Any, hint: Any, key: str, path: Path | str) -> Any:
    """Check `value` against type `hint`; return it in canonical form (lists become tuples)."""
    if dataclasses.is_dataclass(hint):
        return build_section(hint, value, path=path, prefix=f"{key}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise ConfigError(
            f"{path}: {key} = {value!r} is not allowed; expected one of "
            f"{', '.join(map(str, args))}"
        )
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _convert(value, option, key, path)
            except ConfigError:
                continue
        raise ConfigError(
            f"{path}: {key} = {value!r} is not allowed; expected "
            f"{' or '.join(_type_name(option) for option in args)}"
        )
    if origin is tuple:
        fixed = len(args) != 2 or args[1] is not Ellipsis
        if not isinstance(value, list) or (fixed and len(value) != len(args)):
            raise ConfigError(
                f"{path}: {key} = {value!r} is not allowed; expected {_type_name(hint)}"
            )
        item_hints = args if fixed else [args[0]] * len(value)
        return tuple(
            _convert(item, item_hint, f"{key}[{index}]", path)
            for index, (item, item_hint) in enumerate(zip(value, item_hints, strict=True))
        )
    return _convert_scalar(value, hint, key, path)


# A float in exponent notation without a dot (`1e-5`, `1e-06`), which PyYAML leaves a string.
SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _convert_scalar(value: Any, hint: Any, key: str, path: Path | str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and SCIENTIFIC.fullmatch(value):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{path}: {key} = {value!r} is not allowed; expected {_type_name(hint)}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}s"
        return f"a list of {len(args)} {_type_name(args[0])}s"
    names = {int: "whole number", float: "number", str: "string", bool: "true/false"}
    return f"a {names.get(hint, getattr(hint, '__name__', str(hint)))}"
