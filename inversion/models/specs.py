"""One parser for classifier specs, used by every module and by ``evaluate.py``.

Spec kinds:

- ``timm:NAME`` -- any timm model, as timm writes it: an architecture (``resnet50``, random
  init unless ``pretrained=True`` or ``weights``), an architecture with a pretrained tag
  (``resnet50.tv_in1k``) or a Hugging Face repository (``hf-hub:timm/resnet50.tv_in1k``).
- ``torchvision:NAME`` -- any torchvision classification model, optionally with a weights
  version as torchvision names it (``resnet50.IMAGENET1K_V1``, ``resnet50.DEFAULT``).

A name that names weights (a tag, a version, an ``hf-hub:`` repository) loads them unless
``pretrained=False`` or ``weights=PATH`` is given; a bare architecture is randomly
initialised unless ``pretrained=True``. timm and torchvision models carry their own
evaluation preprocessing (:class:`EvalTransform`: resize, centre crop, interpolation; and
their mean and std), which :func:`eval_transform_of` gives for image folders.
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
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inversion.errors import InversionError
from inversion.models.classifier import EvalTransform, ImageClassifier
from inversion.models.weights import (
    is_classifier_checkpoint,
    load_checkpoint_file,
    load_state_dict_file,
    load_weights_into,
    module_substate,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875  # timm's, for a data config without one
KINDS = (
    "timm:NAME[.TAG]",
    "timm:hf-hub:ORG/NAME",
    "torchvision:NAME[.WEIGHTS]",
    "digits:NAME",
    "cifar:NAME",
    "a path to a .ckpt/.pt checkpoint",
)


def _unknown_name(
    kind: str, name: str, known: list[str], arch: str | None = None
) -> InversionError:
    """An unknown architecture; ``arch`` is its part of a name with a weights tag."""
    arch = arch or name
    suffix = name[len(arch) :]
    close = difflib.get_close_matches(arch, known, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(f'{kind}:{c}{suffix}' for c in close)}?" if close else ""
    return InversionError(f"Unknown {kind} model {name!r}.{hint}")


def _offline_error(spec: str, err: Exception) -> InversionError:
    return InversionError(
        f"Could not fetch the pretrained weights of {spec} ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}). This needs the network. Offline, "
        "download the weights elsewhere and pass the file with weights=PATH (and "
        "pretrained=False)."
    )


def _timm_names(name: str) -> tuple[str | None, bool]:
    """Check a timm model name.

    Returns:
        Its registry name (None for ``hf-hub:``) and whether it names weights (a pretrained
        tag or an ``hf-hub:`` repository).
    """
    import timm

    if name.startswith("hf-hub:"):
        repo = name[len("hf-hub:") :]
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise InversionError(
                f"timm:{name} is not a Hugging Face model name; write timm:hf-hub:ORG/NAME, "
                "e.g. timm:hf-hub:timm/resnet50.tv_in1k."
            )
        return None, True
    arch, tag = timm.models.split_model_name_tag(name)
    known = timm.list_models()
    if arch not in known:
        raise _unknown_name("timm", name, known, arch)
    if tag:
        tags = timm.list_pretrained(f"{arch}.*")
        if name not in tags:
            close = difflib.get_close_matches(name, tags, n=5, cutoff=0.5) or tags[:5]
            listed = ", ".join(f"timm:{t}" for t in close) or "none (no pretrained weights)"
            raise InversionError(
                f"Unknown timm pretrained tag {tag!r} for {arch}. Tags of {arch}: {listed}."
            )
    return arch, bool(tag)


def _head_classes(state: dict[str, Any], heads: Any) -> int | None:
    """Rows of a state dict's classification head (timm's ``pretrained_cfg['classifier']``)."""
    for head in (heads,) if isinstance(heads, str) else tuple(heads or ()):
        weight = state.get(f"{head}.weight")
        if weight is not None and weight.ndim >= 1:
            return int(weight.shape[0])
    return None


def _timm_overlay(name: str, registry: str | None, weights: str) -> tuple[dict, bool]:
    """The ``pretrained_cfg_overlay`` that loads a local weights file the way timm does.

    The file is read by this project's safe loader (``weights_only=True``, safetensors,
    ``module.``/``state_dict`` wrappers) and handed to timm as ``state_dict`` with the
    file's own head size as ``num_classes``, so timm loads it as its own pretrained
    weights: model-specific conversions (e.g. a ViT's position embeddings resampled to
    ``input_size``), first-convolution adaptation to ``in_chans``, and a fresh head when
    ``num_classes`` differs from the file's. Returns the overlay and the file's head names.
    """
    state = load_state_dict_file(weights)
    overlay: dict[str, Any] = {"source": "", "state_dict": state, "file": None, "url": None}
    heads = None
    if registry is not None:
        from timm.models import get_pretrained_cfg

        try:
            heads = getattr(get_pretrained_cfg(name), "classifier", None)
        except RuntimeError:  # an architecture without any pretrained config
            heads = None
        classes = _head_classes(state, heads)
        if classes is not None:
            overlay["num_classes"] = classes
    return overlay, heads is not None


def _check_backbone_loaded(
    net: Any, state: dict[str, Any], heads: Any, weights: str, spec: str
) -> None:
    """Check that every tensor but the head came from the file.

    With a fresh head timm loads non-strictly, which would pass over missing keys.
    """
    heads = (heads,) if isinstance(heads, str) else tuple(heads or ())
    missing = [
        key
        for key in net.state_dict()
        if key not in state and not any(key.startswith(f"{h}.") for h in heads)
    ]
    if missing:
        raise InversionError(
            f"Weights file {weights} does not match {spec}: missing {len(missing)} keys (e.g. "
            f"{missing[:3]}). Is it for this architecture?"
        )


def _mismatch(weights: str, spec: str, err: Exception) -> InversionError:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    detail = lines[1] if len(lines) > 1 else lines[0] if lines else ""
    if len(detail) > 200:
        detail = detail[:200].rsplit(",", 1)[0] + ", ..."
    return InversionError(
        f"Weights file {weights} does not match {spec}: {detail} Is it for this "
        "architecture, with the same in_chans?"
    )


def _timm_eval_transform(net: Any, size: tuple[int, int]) -> EvalTransform:
    """The model's timm data config (``resolve_model_data_config``) as an :class:`EvalTransform`."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(net)
    crop_pct = float(config.get("crop_pct") or DEFAULT_CROP_PCT)
    crop = int(size[-1])
    return EvalTransform(
        crop_size=crop,
        resize_size=math.floor(crop / crop_pct),
        interpolation=config.get("interpolation", "bicubic"),
        crop_mode=config.get("crop_mode") or "center",
    )


def _hub_error(spec: str, err: Exception) -> InversionError:
    return InversionError(
        f"Could not read {spec} from the Hugging Face Hub ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}). An hf-hub: name needs the "
        "network, or the Hub cache (HF_HUB_CACHE) with HF_HUB_OFFLINE=1, even with "
        "pretrained=False. Offline, name the model as timm's registry does (e.g. "
        "timm:resnet50.tv_in1k) and pass the weights file with weights=PATH."
    )


def _build_timm(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool | None,
    weights: str | None,
) -> ImageClassifier:
    import timm

    spec = f"timm:{name}"
    registry, names_weights = _timm_names(name)
    download = names_weights if pretrained is None and weights is None else bool(pretrained)
    kwargs: dict = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    state: dict[str, Any] = {}
    heads_known = False
    if weights is not None:
        overlay, heads_known = _timm_overlay(name, registry, weights)
        state = overlay["state_dict"]
        kwargs.update(pretrained_cfg_overlay=overlay)

    def create(**extra: Any):
        try:
            return timm.create_model(
                name, pretrained=download or weights is not None, **kwargs, **extra
            )
        except TypeError:
            raise
        except RuntimeError as err:
            if weights is not None:
                raise _mismatch(weights, spec, err) from err
            if download:
                raise _offline_error(spec, err) from err
            raise
        except Exception as err:
            if registry is None:
                raise _hub_error(spec, err) from err
            if download:
                raise _offline_error(spec, err) from err
            raise

    if input_size is not None:
        try:  # transformers and MLPs take img_size; convolutional nets do not need it
            net = create(img_size=input_size)
        except TypeError:
            net = create()
    else:
        net = create()
    if weights is not None:  # timm keeps the overlay: drop the file's tensors it holds
        for attr in ("pretrained_cfg", "default_cfg"):
            held = getattr(net, attr, None)
            if isinstance(held, dict):
                held.pop("state_dict", None)
    cfg = dict(getattr(net, "pretrained_cfg", {}) or {})
    if weights is not None and heads_known and net.num_classes != cfg.get("num_classes"):
        _check_backbone_loaded(net, state, cfg.get("classifier"), weights, spec)
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
        eval_transform=_timm_eval_transform(net, size),
    )


def _torchvision_weights(name: str) -> tuple[str, Any, bool]:
    """Check a torchvision name.

    Returns:
        The architecture, its weights enum member (the named version, else ``DEFAULT``,
        else None) and whether the name gave a version.
    """
    import torchvision
    from torchvision.models import get_model_weights

    arch, _, version = name.partition(".")
    known = torchvision.models.list_models(module=torchvision.models)
    if arch not in known:
        raise _unknown_name("torchvision", name, known, arch)
    try:
        enum = get_model_weights(arch)
    except (ValueError, KeyError):
        enum = None
    members = list(enum.__members__) if enum is not None else []
    if version:
        if version not in members:
            listed = ", ".join(f"torchvision:{arch}.{m}" for m in members) or "none"
            raise InversionError(
                f"Unknown torchvision weights {version!r} for {arch}. Versions: {listed}."
            )
        return arch, enum[version], True  # type: ignore[index]
    return arch, enum["DEFAULT"] if "DEFAULT" in members else None, False  # type: ignore[index]


def _build_torchvision(
    name: str,
    *,
    num_classes: int | None,
    in_chans: int | None,
    input_size: int | None,
    pretrained: bool | None,
    weights: str | None,
) -> ImageClassifier:
    import torchvision
    from torch import nn

    spec = f"torchvision:{name}"
    arch, version, names_weights = _torchvision_weights(name)
    download = names_weights if pretrained is None and weights is None else bool(pretrained)
    if in_chans not in (None, 3):
        raise InversionError(
            f"{spec} takes 3-channel inputs (in_chans={in_chans} is not "
            "supported); 1-channel images are replicated automatically."
        )
    if download and version is None:
        raise InversionError(f"torchvision has no pretrained weights for {arch}.")
    categories = len(version.meta.get("categories") or ()) if version is not None else 0
    if download and num_classes not in (None, categories):
        raise InversionError(
            f"The pretrained weights of {spec} have {categories} classes; "
            f"num_classes={num_classes} needs pretrained=False."
        )
    kwargs: dict = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    fixed = arch.startswith(("vit_", "maxvit", "swin"))
    if arch.startswith("vit_"):
        if input_size is not None:
            kwargs["image_size"] = input_size
        elif names_weights and not download:  # the architecture the named weights need
            kwargs["image_size"] = int(version.meta["min_size"][0])
    try:
        net = torchvision.models.get_model(arch, weights=version if download else None, **kwargs)
    except Exception as err:
        if download:
            raise _offline_error(spec, err) from err
        raise
    if weights is not None:
        load_weights_into(net, weights, spec)
    preprocess = version.transforms() if version is not None else None
    eval_transform = None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if preprocess is not None and hasattr(preprocess, "crop_size"):
        eval_transform = EvalTransform(
            crop_size=int(preprocess.crop_size[0]),
            resize_size=int(preprocess.resize_size[0]),
            interpolation=preprocess.interpolation.value,
        )
        mean, std = tuple(preprocess.mean), tuple(preprocess.std)
    size = input_size or (eval_transform.crop_size if eval_transform else 224)
    if arch.startswith("vit_"):
        size = net.image_size
    linears = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return ImageClassifier(
        net,
        name=spec,
        num_classes=num_classes or (categories if download else 1000),
        in_chans=3,
        input_size=(size, size),
        mean=mean,
        std=std,
        fixed_size=fixed,
        head=linears[-1] if linears else None,
        feature_layers=[n for n, _ in net.named_children()],
        eval_transform=eval_transform,
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
    model.name = str(path)  # (its architecture stays that of the spec inside)
    return model.eval()


def self_contained_hparams(hparams: dict[str, Any], model: ImageClassifier) -> dict[str, Any]:
    """A classifier checkpoint's hyperparameters that rebuild ``model`` from the file alone.

    The network is named by its architecture (:attr:`ImageClassifier.architecture`) with
    ``pretrained=False`` and no ``weights``, so neither the starting weights file (nor a
    checkpoint it was fine-tuned from) nor the network is needed to load it: the
    checkpoint's state dict holds the weights. What the run started from is kept under
    ``initialised_from`` (a key the module's init does not take).
    """
    if model.architecture is None:
        return hparams
    arch = model.architecture
    started = {k: hparams.get(k) for k in ("classifier", "pretrained", "weights")}
    rebuilt = {
        "classifier": arch["spec"],
        "num_classes": arch["num_classes"],
        "in_chans": arch["in_chans"],
        "input_size": arch["input_size"],
        "pretrained": False,
        "weights": None,
    }
    if started != {k: rebuilt[k] for k in started}:
        rebuilt["initialised_from"] = started
    return {**hparams, **rebuilt}


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
        spec: ``timm:NAME`` (``resnet50``, ``resnet50.tv_in1k``, ``hf-hub:ORG/NAME``),
            ``torchvision:NAME`` (``resnet50``, ``resnet50.IMAGENET1K_V1``),
            ``digits:NAME``, ``cifar:NAME`` or a checkpoint path.
        num_classes: Output classes (default: the model's own, 1000 for ImageNet models).
        in_chans: Input channels of the network (default 3; 1 for the digits zoo).
        input_size: Input side for models with a fixed input size (ViTs, MLPs); others
            accept any size.
        pretrained: Download pretrained weights (timm/torchvision; needs the network or
            the library's cache). The default (None) loads the weights a spec names (a
            timm tag, an ``hf-hub:`` repository, a torchvision weights version) and
            randomly initialises a bare architecture; False never loads weights. For
            ``digits:*`` None means the trained embedded model and False an untrained
            architecture.
        weights: A local weights file (state dict, ``.pt``/``.pth``/``.safetensors``),
            loaded with ``weights_only=True``; the offline alternative to ``pretrained``.
            For timm models it is loaded through timm's own mechanism
            (``pretrained_cfg_overlay``): a ``num_classes`` other than the file's gives
            the file's backbone with a fresh head (fine-tuning), and ``in_chans``/
            ``input_size`` adapt the first convolution/position embeddings.

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
            pretrained=bool(pretrained) if kind == "cifar" else pretrained,
            weights=weights,
        )
        model.architecture = {
            "spec": spec,
            "num_classes": model.num_classes,
            "in_chans": model.in_chans,
            "input_size": input_size,
        }
        return model.eval()
    path = Path(spec).expanduser()
    if path.is_file():
        return classifier_from_checkpoint(path)
    if path.suffix in (".ckpt", ".pt", ".pth") or "/" in spec or "\\" in spec:
        raise InversionError(f"Checkpoint file not found: {spec}.")
    close = difflib.get_close_matches(kind, list(_BUILDERS), n=1)
    hint = f" Did you mean {close[0]}:{name or kind}?" if close else ""
    raise InversionError(f"Unknown classifier spec {spec!r}.{hint} Use one of: {', '.join(KINDS)}.")


def eval_transform_of(spec: str) -> EvalTransform | None:
    """The eval transform of the model a spec names (None where it has none).

    The model is built without its weights (nothing is downloaded; an ``hf-hub:`` name
    still reads its config from the Hub or its cache).
    """
    kind = spec.partition(":")[0]
    pretrained = False if kind in _BUILDERS else None
    return build_classifier(spec, pretrained=pretrained).eval_transform
