"""gender_cls: Keras 3 transfer learning for image classification (gender of faces by default).

The public API (api.py) is loaded on first use, so `import gender_cls` stays light (no TensorFlow):
train, evaluate, export, list_backbones, Predictor, Verifier, RECIPES, UserError."""

from importlib import import_module

__version__ = "0.1.0"
_PUBLIC = {
    "train": "gender_cls.api",
    "evaluate": "gender_cls.api",
    "export": "gender_cls.api",
    "list_backbones": "gender_cls.api",
    "Predictor": "gender_cls.predict.predictor",
    "Verifier": "gender_cls.verify.verifier",
    "RECIPES": "gender_cls.training.recipes",
    "UserError": "gender_cls.errors",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gender_cls' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
