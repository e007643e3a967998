"""Fine-tuning (book ch. 5, Chollet's recipe): a new head on a pretrained body, warmed up
with the body frozen, then the body's top layers unfrozen and trained at a low rate."""

import dataclasses
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from imgclf.core.config import FinetuneParams, Params, ScheduleParams
from imgclf.core.errors import UserError
from imgclf.models.distributed import fit_with_strategy, run_data
from imgclf.models.features import pooling_layer
from imgclf.models.modelcard import ModelCard
from imgclf.models.predicting import load_keras_model
from imgclf.models.training import (
    RunPaths,
    TrainingData,
    build_optimizer,
    class_weights,
    compile_classifier,
    fingerprint,
)

# Fine-tuning keeps each phase's learning rate constant, as the book does.
CONSTANT = ScheduleParams(name="constant", power=1.0, factor=1.0, every=1)


# Layers that act only in training mode; in inference mode each is the identity.
TRAINING_ONLY = (
    keras.layers.Dropout,  # SpatialDropout1D/2D/3D and EfficientNet's drop-connect too
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)


def in_inference_mode(model: keras.Model) -> keras.Model:
    """A copy of `model`, weights included, whose dropout and noise layers are identities:
    what they compute in inference mode. Keras 3 does not keep a nested model's
    `training=False` when `fit` calls the outer model with training=True, so the body's own
    dropout would otherwise run in both fine-tuning phases. Layer names are kept."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, TRAINING_ONLY):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, keras.Model):
            return in_inference_mode(layer)
        return layer.__class__.from_config(layer.get_config())

    # Input layers named as the original's: auto-named ones would number by what the process
    # built before, and the saved model file would change with it.
    names = {
        id(layer.output): layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.InputLayer)
    }
    inputs = keras.tree.map_structure(
        lambda tensor: keras.Input(
            batch_shape=tensor.shape, dtype=tensor.dtype, name=names.get(id(tensor), tensor.name)
        ),
        model.input,
    )
    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def build_finetune_model(
    backbone: keras.Model, classes: int, *, pooling: str, hidden: int, dropout: float
) -> keras.Model:
    """backbone → pooling (avg or flatten) → Dense(hidden, relu) → Dropout → softmax.

    The backbone runs in inference mode in both phases, as in Chollet's recipe: its dropout
    layers become identities (`in_inference_mode`), and its BatchNormalization layers are
    never trainable, so their statistics, learnt on the source data, are not wrecked by small
    fine-tuning batches. Only the head's own Dropout is active in training.
    """
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    features = in_inference_mode(backbone)(inputs, training=False)
    pooled = pooling_layer(pooling, "pool")(features)
    hidden_layer = keras.layers.Dense(hidden, activation="relu", name="head_dense")(pooled)
    dropped = keras.layers.Dropout(dropout, name="head_dropout")(hidden_layer)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(dropped)
    return keras.Model(inputs, outputs, name="finetune")


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone model inside a model made by `build_finetune_model`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise UserError(f"{model.name}: expected one nested backbone, found {len(nested)}")
    return nested[0]


def freeze_backbone(model: keras.Model) -> None:
    """Phase 1 (warm-up): only the new head learns."""
    backbone_of(model).trainable = False


def leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers in order, with nested models (a keras.applications body) expanded
    and input layers left out."""
    leaves: list[keras.layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves += leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            leaves.append(layer)
    return leaves


def unfreeze_top(model: keras.Model, layers: int) -> list[str]:
    """Phase 2: make the backbone's last `layers` layers trainable, except BatchNormalization.

    Counts layers in order, weightless ones included, as the book's `inspect_model.py` does.
    Returns the names of the layers with weights that are now trainable. Recompile after.
    """
    backbone = backbone_of(model)
    _set_trainable_tree(backbone)
    leaves = leaf_layers(backbone)
    chosen = {id(layer) for layer in leaves[-layers:]} if layers > 0 else set()
    for layer in leaves:
        layer.trainable = id(layer) in chosen and not isinstance(
            layer, keras.layers.BatchNormalization
        )
    return [layer.name for layer in leaves if layer.trainable and layer.weights]


def _set_trainable_tree(model: keras.Model) -> None:
    """Containers must be trainable for any layer inside them to be."""
    model.trainable = True
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _set_trainable_tree(layer)


def finetune_two_phases(
    strategy: tf.distribute.Strategy,
    backbone_path: Path,
    train: TrainingData,
    val: tf.data.Dataset,
    params: FinetuneParams,
    *,
    classes: int,
    steps_per_epoch: int,
    model_path: Path,
    curves: Path,
    run_id: str,
    card: ModelCard,
    class_weight: dict[int, float] | None = None,
) -> list[str]:
    """Warm the new head up with the body frozen, then train it with the body's top layers;
    keep the phase-2 epoch `params.keep_epoch` says (the last, or the best on val). Returns the
    backbone layers trained in phase 2.

    The warm-up's state is kept until phase 2 ends: a run killed in phase 2 resumes there,
    without training the warm-up again. Curves go to `curves`/warmup.csv and finetune.csv.
    """
    run = {
        "steps_per_epoch": steps_per_epoch,
        "run_id": run_id,
        "class_weight": class_weight,
        "keep_epoch": params.keep_epoch,
    }
    with strategy.scope():
        model = build_finetune_model(
            load_keras_model(backbone_path),
            classes,
            pooling=params.pooling,
            hidden=params.hidden,
            dropout=params.dropout,
        )
        freeze_backbone(model)
        compile_classifier(
            model,
            build_optimizer(
                params.warmup_optimizer, CONSTANT, steps_per_epoch, params.warmup_epochs
            ),
        )
    warmup = RunPaths(
        model_path.with_name(model_path.stem + ".warmup.keras"), curves / "warmup.csv"
    )
    fit_with_strategy(
        strategy,
        model,
        train,
        val,
        epochs=params.warmup_epochs,
        paths=warmup,
        keep_state=True,
        **run,
    )
    with strategy.scope():
        if warmup.model.exists():  # the kept warm-up epoch; multi-worker models already hold it
            model = load_keras_model(warmup.model)
        trainable = unfreeze_top(model, params.unfreeze)
        compile_classifier(
            model, build_optimizer(params.optimizer, CONSTANT, steps_per_epoch, params.epochs)
        )
    fit_with_strategy(
        strategy,
        model,
        train,
        val,
        epochs=params.epochs,
        paths=RunPaths(model_path, curves / "finetune.csv"),
        card=card,
        **run,
    )
    shutil.rmtree(warmup.state, ignore_errors=True)
    warmup.model.unlink(missing_ok=True)
    return trainable


def finetune(
    params: Params, backbone: Path, train_pack: Path, val_pack: Path, model: Path, curves: Path
) -> list[str]:
    """The finetune stage's work: `finetune_two_phases` on the packs at their full size under
    `distribute.strategy`, resumably, the model with its card. Returns the backbone layers trained
    in phase 2."""
    tune, seed = params.finetune, params.base.seed
    data = run_data(
        params.distribute.strategy,
        train_pack,
        val_pack,
        per_replica=tune.batch_size,
        seed=seed,
        crop=None,
        augment=tune.augment,
    )
    settings = {**dataclasses.asdict(tune), "seed": seed, "strategy": params.distribute.strategy}
    body = ModelCard.read(backbone)
    card = ModelCard(
        kind="keras",
        model="finetune",
        label_names=data.train.label_names,
        image_size=data.train.image_shape[:2],
        input_size=data.train.image_shape[:2],
        interpolation=data.train.interpolation,
        arch=body.arch,
        weights=body.weights,
    )
    return finetune_two_phases(
        data.strategy,
        backbone,
        data.train_data,
        data.val_data,
        tune,
        classes=len(data.train.label_names),
        steps_per_epoch=data.steps_per_epoch,
        model_path=model,
        curves=curves,
        run_id=fingerprint(settings, [backbone, train_pack, val_pack]),
        card=card,
        class_weight=class_weights(tune.class_weight, train_pack),
    )
