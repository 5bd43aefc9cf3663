"""One parser for classifier specs, used by every module and by ``evaluate.py``.

Spec kinds:

- ``timm:NAME`` -- any timm model (random init unless ``pretrained=True`` or ``weights``).
- ``torchvision:NAME`` -- any torchvision classification model (same options).
- ``digits:NAME`` -- the embedded zoo (``cnn``, ``resnet``, ``vit``, ``mlp``,
  ``cnn-robust``, ``resnet-deep``), trained on the bundled digits on first use and cached;
  ``pretrained=False`` gives the untrained architecture.
- ``cifar:NAME`` -- CIFAR-style ResNets (``resnet18`` .. ``resnet152``; the robustness
  library's layout, whose checkpoints load as ``weights``).
- a path to a checkpoint written by this project's classifier module (or a cached zoo
  file).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inversion.errors import InversionError
from inversion.models.classifier import ImageClassifier
from inversion.models.weights import (
    is_classifier_checkpoint,
    load_checkpoint_file,
    load_weights_into,
    module_substate,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = (
    "timm:NAME",
    "torchvision:NAME",
    "digits:NAME",
    "cifar:NAME",
    "a path to a .ckpt/.pt checkpoint",
)


def _unknown_name(kind: str, name: str, known: list[str]) -> InversionError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(f'{kind}:{c}' for c in close)}?" if close else ""
    return InversionError(f"Unknown {kind} model {name!r}.{hint}")


def _offline_error(spec: str, err: Exception) -> InversionError:
    return InversionError(
        f"Could not fetch the pretrained weights of {spec} ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}). This needs the network. Offline, "
        "download the weights elsewhere and pass the file with weights=PATH (and "
        "pretrained=False)."
    )


def _build_timm(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool,
    weights: str | None,
) -> ImageClassifier:
    import timm

    if name not in timm.list_models():
        raise _unknown_name("timm", name, timm.list_models())
    kwargs: dict = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    spec = f"timm:{name}"

    def create(**extra: Any):
        try:
            return timm.create_model(name, pretrained=pretrained, **kwargs, **extra)
        except TypeError:
            raise
        except Exception as err:
            if pretrained:
                raise _offline_error(spec, err) from err
            raise

    if input_size is not None:
        try:  # transformers and MLPs take img_size; convolutional nets do not need it
            net = create(img_size=input_size)
        except TypeError:
            net = create()
    else:
        net = create()
    if weights is not None:
        load_weights_into(net, weights, spec)
    cfg = dict(getattr(net, "pretrained_cfg", {}) or {})
    fixed = bool(cfg.get("fixed_input_size", False))
    size = cfg.get("input_size", (3, 224, 224))[-2:]
    img_size = getattr(getattr(net, "patch_embed", None), "img_size", None)
    if fixed and img_size is not None:
        size = tuple(img_size)
    elif input_size is not None:
        size = (input_size, input_size)
    chans = net.default_cfg.get("input_size", (3,))[0] if in_chans is None else in_chans
    mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    if len(mean) != chans:
        mean, std = (sum(mean) / len(mean),) * chans, (sum(std) / len(std),) * chans
    head_module = net.get_classifier() if hasattr(net, "get_classifier") else None
    head = next((n for n, m in net.named_modules() if m is head_module and n), None)
    feature_info = getattr(net, "feature_info", None) or []
    return ImageClassifier(
        net,
        name=spec,
        num_classes=net.num_classes,
        in_chans=chans,
        input_size=size,
        mean=mean,
        std=std,
        fixed_size=fixed,
        head=head,
        feature_layers=[f["module"] for f in feature_info if "module" in f],
    )


def _build_torchvision(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool,
    weights: str | None,
) -> ImageClassifier:
    import torchvision
    from torch import nn

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise _unknown_name("torchvision", name, known)
    spec = f"torchvision:{name}"
    if in_chans not in (None, 3):
        raise InversionError(
            f"{spec} takes 3-channel inputs (in_chans={in_chans} is not "
            "supported); 1-channel images are replicated automatically."
        )
    if pretrained and num_classes not in (None, 1000):
        raise InversionError(
            f"The pretrained weights of {spec} have 1000 classes; "
            f"num_classes={num_classes} needs pretrained=False."
        )
    kwargs: dict = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    fixed = name.startswith(("vit_", "maxvit", "swin"))
    if input_size is not None and name.startswith("vit_"):
        kwargs["image_size"] = input_size
    try:
        net = torchvision.models.get_model(
            name, weights="DEFAULT" if pretrained else None, **kwargs
        )
    except Exception as err:
        if pretrained:
            raise _offline_error(spec, err) from err
        raise
    if weights is not None:
        load_weights_into(net, weights, spec)
    size = input_size or 224
    if name.startswith("vit_"):
        size = net.image_size
    linears = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return ImageClassifier(
        net,
        name=spec,
        num_classes=num_classes or 1000,
        in_chans=3,
        input_size=(size, size),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        fixed_size=fixed,
        head=linears[-1] if linears else None,
        feature_layers=[n for n, _ in net.named_children()],
    )


def _build_digits(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool | None,
    weights: str | None,
) -> ImageClassifier:
    from inversion.models import zoo

    if name not in zoo.ZOO:
        raise _unknown_name("digits", name, list(zoo.ZOO))
    recipe = zoo.ZOO[name]
    if pretrained is False or weights is not None:
        model = zoo.wrap_digits_net(
            recipe.arch,
            in_chans or recipe.in_chans,
            num_classes or 10,
            input_size or recipe.image_size,
            name=f"digits:{name}",
        )
        if weights is not None:
            load_weights_into(model.net, weights, f"digits:{name}")
        return model
    requested = {
        "num_classes": (num_classes, 10),
        "in_chans": (in_chans, recipe.in_chans),
        "input_size": (input_size, recipe.image_size),
    }
    for option, (asked, trained) in requested.items():
        if asked is not None and asked != trained:
            raise InversionError(
                f"The embedded digits:{name} is trained with {option}={trained}, not {asked}. "
                f"Leave {option} unset (inputs of other sizes/channels are adapted), or pass "
                "pretrained=False for an untrained architecture."
            )
    return zoo.load_zoo_model(name)


def classifier_from_checkpoint(path: str | Path) -> ImageClassifier:
    """Rebuild a classifier from a checkpoint of this project's classifier module."""
    checkpoint = load_checkpoint_file(path)
    if not is_classifier_checkpoint(checkpoint):
        raise InversionError(
            f"{path} is not a checkpoint of this project's classifier module (no "
            "'hyper_parameters' with 'classifier'). For a plain state dict, give the "
            "architecture as the spec and the file as weights=PATH."
        )
    hp = checkpoint["hyper_parameters"]
    model = build_classifier(
        hp["classifier"],
        num_classes=hp.get("num_classes"),
        in_chans=hp.get("in_chans"),
        input_size=hp.get("input_size"),
        pretrained=False,
    )
    model.load_state_dict(module_substate(checkpoint, "model"))
    model.name = str(path)
    return model.eval()


def _build_cifar(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool,
    weights: str | None,
) -> ImageClassifier:
    from inversion.models.cifar_resnet import (
        CIFAR_MEAN,
        CIFAR_STD,
        cifar_resnet,
        from_robustness_names,
    )

    spec = f"cifar:{name}"
    if pretrained:
        raise InversionError(
            f"{spec} has no downloadable weights; train it (RobustClassifierModule or "
            "ClassifierModule) or give a weights file (weights=PATH, e.g. a robustness-"
            "library checkpoint)."
        )
    if in_chans not in (None, 3):
        raise InversionError(f"{spec} takes 3-channel inputs, not in_chans={in_chans}.")
    net = cifar_resnet(name, num_classes or 10)
    if weights is not None:
        load_weights_into(net, weights, spec, rename=from_robustness_names)
    size = input_size or 32
    return ImageClassifier(
        net,
        name=spec,
        num_classes=num_classes or 10,
        in_chans=3,
        input_size=(size, size),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        head="fc",
        feature_layers=["layer1", "layer2", "layer3", "layer4"],
    )


_BUILDERS: dict[str, Callable[..., ImageClassifier]] = {
    "timm": _build_timm,
    "torchvision": _build_torchvision,
    "digits": _build_digits,
    "cifar": _build_cifar,
}


def build_classifier(
    spec: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    input_size: int | None = None,
    pretrained: bool | None = None,
    weights: str | None = None,
) -> ImageClassifier:
    """Build a classifier from a spec string; it takes images in [0, 1].

    Args:
        spec: ``timm:NAME``, ``torchvision:NAME``, ``digits:NAME``, ``cifar:NAME`` or a
            checkpoint path.
        num_classes: Output classes (default: the model's own, 1000 for ImageNet models).
        in_chans: Input channels of the network (default 3; 1 for the digits zoo).
        input_size: Input side for models with a fixed input size (ViTs, MLPs); others
            accept any size.
        pretrained: Download pretrained weights (timm/torchvision; needs the network).
            For ``digits:*`` the default (None) means the trained embedded model and
            False an untrained architecture.
        weights: A local weights file (state dict, ``.pt``/``.pth``/``.safetensors``),
            loaded with ``weights_only=True``; the offline alternative to ``pretrained``.

    Returns:
        An :class:`ImageClassifier` in eval mode (call ``.freeze()`` to fix it there).

    Raises:
        InversionError: For an unknown spec or name, a missing or mismatched weights file,
            or pretrained weights that cannot be fetched offline.
    """
    if not isinstance(spec, str) or not spec:
        raise InversionError(
            f"A classifier spec is a non-empty string, got {spec!r}; "
            f"use one of: {', '.join(KINDS)}."
        )
    if num_classes is not None and num_classes < 2:
        raise InversionError(f"num_classes of {spec} must be at least 2, got {num_classes}.")
    kind, sep, name = spec.partition(":")
    if sep and kind in _BUILDERS:
        if not name:
            raise InversionError(f"Spec {spec!r} names no model; e.g. {kind}:resnet18.")
        if weights is not None and pretrained:
            raise InversionError(
                "Give either pretrained=True (download) or weights=PATH (local file), not both."
            )
        build = _BUILDERS[kind]
        model = build(
            name,
            num_classes=num_classes,
            in_chans=in_chans,
            input_size=input_size,
            pretrained=bool(pretrained) if kind != "digits" else pretrained,
            weights=weights,
        )
        return model.eval()
    path = Path(spec).expanduser()
    if path.is_file():
        return classifier_from_checkpoint(path)
    if path.suffix in (".ckpt", ".pt", ".pth") or "/" in spec or "\\" in spec:
        raise InversionError(f"Checkpoint file not found: {spec}.")
    close = difflib.get_close_matches(kind, list(_BUILDERS), n=1)
    hint = f" Did you mean {close[0]}:{name or kind}?" if close else ""
    raise InversionError(f"Unknown classifier spec {spec!r}.{hint} Use one of: {', '.join(KINDS)}.")
