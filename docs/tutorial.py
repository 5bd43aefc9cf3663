# %% [markdown]
# # Model inversion in plain PyTorch: a tour on the digits zoo
#
# This script walks the plain-PyTorch API of `inversion` (no Lightning anywhere) on the
# embedded digits benchmark: scikit-learn's 1,797 real 8 x 8 digits, upsampled to
# 32 x 32, and the zoo of small classifiers trained on them (on first use, then cached
# in `~/.cache/model-inversion`, as are the FID reference statistics). Every section
# prints what it measured and writes its pictures to the folder named by `--out`
# (default: a new temporary folder); nothing else is written, nothing is downloaded.
#
#     python docs/tutorial.py --out tutorial_images
#
# The settings are small, so that the whole tour takes under 3 minutes on 2 CPU cores
# once the zoo is cached: the numbers show what each tool measures, not what a full
# budget reaches (the benchmark tables do that). The `# %%` markers make it a notebook
# for editors that run cells (VS Code, PyCharm, Spyder) or for `jupytext`.

# %%
"""A runnable tour of the plain-PyTorch model-inversion API on the digits zoo."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.utils import save_image

import inversion
from inversion import (
    PGD,
    ClassInverter,
    ImageScorer,
    InverterStack,
    adversarial_samples,
    build_classifier,
    export_inverter,
    find_pattern,
    invert_representation,
    load_exported_inverter,
    psnr,
    recipe_from,
    score_pattern,
    ssim,
    train_generator,
    train_stack,
    transfer_matrix,
)
from inversion.data.digits import load_digits_split
from inversion.data.noise import noise_images
from inversion.dominant_patterns import PatternObjective, random_pattern
from inversion.layerwise import LossWeights, Schedule
from inversion.models.split import split_classifier
from inversion.robust_prior import gray_seeds, representation, tool_attack
from inversion.visual import class_grid, pair_grid


def output_folder(argv: list[str]) -> Path:
    """The folder of ``--out`` (created if missing), or a new temporary folder.

    Args:
        argv: The command-line arguments (none inside a notebook kernel).

    Returns:
        The folder every picture of the tour goes to.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: a temp dir)")
    out = parser.parse_args(argv).out
    if out is None:
        return Path(tempfile.mkdtemp(prefix="inversion-tutorial-"))
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} exists and is not a folder; name a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"cannot create the folder --out {out}: {err.strerror}.")
    return out


def save(picture: torch.Tensor, name: str) -> None:
    """Write a picture (C x H x W, or a batch laid out in a row) in [0, 1] as ``OUT/name``."""
    save_image(picture, OUT / name)
    print(f"  wrote {name}")


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on a batch of images."""
    return float((model(images).argmax(1) == labels).float().mean())


OUT = output_folder([] if "ipykernel" in sys.modules else sys.argv[1:])
torch.manual_seed(0)
START = time.perf_counter()
print(f"outputs go to {OUT}")
print(f"the curated API: {len(inversion.__all__)} names in inversion.__all__")

# %% [markdown]
# ## 1. Classifiers: one spec string, images in [0, 1]
#
# `build_classifier(spec)` parses one spec for every model: `digits:cnn` is the zoo's
# CNN (`timm:NAME`, `torchvision:NAME` or a checkpoint path work the same way). Every
# classifier is an `ImageClassifier`: it takes float N x C x H x W images in [0, 1] and
# normalises them itself; `freeze()` fixes it in eval mode without gradients. Feature
# taps take any module name, or `penultimate` (the input of the classification head).

# %%
model = build_classifier("digits:cnn").freeze()
test_images, test_labels = load_digits_split("test")  # 360 real digits, 1 x 32 x 32
logits, features = model.forward_with_features(test_images[:4], ["stage3", "penultimate"])
print("1. the classifier digits:cnn")
print(f"  feature layers {model.feature_layers}, logits {tuple(logits.shape)}")
print(
    f"  stage3 {tuple(features['stage3'].shape)}, penultimate "
    f"{tuple(features['penultimate'].shape)}"
)
print(
    f"  top-1 on the {len(test_labels)} real test digits: "
    f"{accuracy(model, test_images, test_labels):.1%}"
)
real = torch.cat([test_images[test_labels == c][:2] for c in range(10)])  # 2 per class
save(
    class_grid(real, torch.arange(10).repeat_interleave(2), per_row=2, upscale=2), "real_digits.png"
)

# %% [markdown]
# ## 2. Class inversion: images the classifier assigns to a class, from noise
#
# A `Recipe` names a method's augmentations, priors and schedule: `pii` (Plug-In
# Inversion: jitter, ensembles, ColorShift and zoom stages, no priors), `deepinversion`
# (batch-norm statistics and image priors) and `deepdream`. `recipe_from(name, options)`
# overrides fields; here the digits benchmark's ColorShift ranges and no flips (a
# flipped digit is another digit), with short schedules. `ClassInverter.invert(labels)`
# runs a whole schedule; `start`, `step` and `result` drive it one step at a time.

# %%
recipes = {
    "pii": recipe_from(
        "pii",
        {"steps_per_stage": 20, "lr": 0.02, "color_shift_mean": 0.25, "color_shift_log_std": 0.25},
    ),
    "deepinversion": recipe_from(
        "deepinversion",
        {
            "low_res_steps": 100,
            "steps_per_stage": 100,
            "warmup_steps": 10,
            "flip": False,
            "iterate": "last",
        },
    ),
}
targets = torch.arange(10).repeat_interleave(2)  # two images of each class
inverted = {}
print("2. class inversion of digits:cnn")
for name, recipe in recipes.items():
    inverter = ClassInverter(
        model, recipe, image_size=32, channels=1, generator=torch.Generator().manual_seed(0)
    )
    inverter.start(targets)
    while not inverter.finished:
        parts = inverter.step()  # the loss and its parts
    inverted[name] = inverter.result()
    print(
        f"  {name:14s} {inverter.total_steps} steps, last cross-entropy "
        f"{float(parts['ce']):.2f}, the target's top-1 "
        f"{accuracy(model, inverted[name], targets):.0%}"
    )
    save(class_grid(inverted[name], targets, per_row=2, upscale=2), f"class_inversion_{name}.png")

# %% [markdown]
# ## 3. Scoring produced images: verifiers, Inception Score, FID
#
# `ImageScorer` is the metric layer every method shares. Verifiers are classifiers that
# did not produce the images: their top-1 says whether the images carry the class for
# other models too, not only the target's quirks. `feature="digits:resnet"` replaces
# InceptionV3 by a digits model's features for IS/FID/KID (the metric names say so).
# The FID reference is the real test split, embedded once and cached. With 20 images
# FID is biased high, so 20 real digits are scored the same way for comparison.

# %%
scorer = ImageScorer(
    verifiers=["digits:resnet", "digits:vit", "digits:mlp"], feature="digits:resnet", splits=2
)
scorer.set_reference("digits:test", progress=False)
columns = ["top1_verifiers", "top5_verifiers", "is_digits-resnet", "fid_digits-resnet"]
print("3. scores of 20 images (2 per class)")
print(f"  {'images':14s} " + " ".join(f"{key:>17s}" for key in columns))
for name, images in [*inverted.items(), ("real digits", real)]:
    scorer.reset()  # forget the previous images; the reference stays
    scorer.update(images, targets)
    scores = scorer.compute()
    print(f"  {name:14s} " + " ".join(f"{scores[key]:17.3f}" for key in columns))

# %% [markdown]
# ## 4. Robustness as a prior: PGD, then representation inversion
#
# `PGD` is one attack for adversarial training, robust evaluation and the representation
# tools. Under an L2 attack of radius 1.5 the standard CNN loses its accuracy, while
# `digits:cnn-robust`, the same CNN adversarially trained, keeps most of it. A robust
# model's features are "perceptually aligned": inverting its `stage3` features from gray
# noise (`invert_representation`: PGD on ||R(x) - R(x_t)|| / ||R(x_t)|| bounded only by
# the [0, 1] box) gives back the digits, where the standard model's give noise. Given
# the `originals` that images reconstruct, `ImageScorer` adds PSNR, SSIM and agreement.

# %%
robust = build_classifier("digits:cnn-robust").freeze()
attack = PGD(eps=1.5, step_size=0.375, steps=10, norm="l2")
clean, labels = test_images[:100], test_labels[:100]
print("4. robustness as a prior")
for name, net in (("digits:cnn", model), ("digits:cnn-robust", robust)):
    adversarial = attack(net, clean, labels)
    print(
        f"  {name:18s} top-1 clean {accuracy(net, clean, labels):.0%}, "
        f"under L2 PGD-10 eps 1.5 {accuracy(net, adversarial, labels):.0%}"
    )
originals, classes = real[::2], torch.arange(10)  # one real digit per class
seeds = gray_seeds(originals.shape, torch.Generator().manual_seed(0))
reconstruction = ImageScorer(verifiers=["digits:resnet"], feature=None)
for name, net in (("digits:cnn", model), ("digits:cnn-robust", robust)):
    goal = representation(net, originals, "stage3")
    found = invert_representation(net, goal, seeds, tool_attack(0.1, 300), layer="stage3")
    reconstruction.reset()
    reconstruction.update(found, classes, originals=originals)
    scores = reconstruction.compute()
    print(
        f"  inverting {name:18s} stage3: PSNR {scores['psnr']:5.2f} dB, SSIM "
        f"{scores['ssim']:.3f}, digits:resnet top-1 {scores['top1_digits-resnet']:.0%}"
    )
    save(
        pair_grid(found, originals, per_row=10, upscale=2),
        f"representation_inversion_{name.split(':')[1]}.png",
    )

# %% [markdown]
# ## 5. Dominant patterns: one universal perturbation that decides the output
#
# `find_pattern` optimises one pattern p (L-inf radius eps) on unlabelled proxy images
# so that the classifier sees x + p as it sees p alone (objective `dominant`; the
# label-free UAP baselines are the other objectives). `score_pattern` gives the fooling
# rate (the prediction changed) and the dominance (x + p classified as p alone);
# `transfer_matrix` applies patterns to other models. A random pattern of the same
# strength is the control.

# %%
train_images, _ = load_digits_split("train")  # proxy images: the labels are never used
proxy = DataLoader(TensorDataset(train_images), batch_size=32, shuffle=True)
pattern = find_pattern(model, proxy, PatternObjective("dominant"), eps=16 / 255, epochs=1)
control = random_pattern(1, 32, eps=16 / 255, generator=torch.Generator().manual_seed(0))
print("5. a dominant pattern of digits:cnn (eps 16/255, one epoch on the train split)")
for name, candidate in (("dominant", pattern), ("random", control)):
    scores = score_pattern(model, candidate, test_images, test_labels)
    print(
        f"  {name:8s} pattern: fooling rate {scores['fooling_rate']:.1%}, dominance "
        f"{scores['dominance']:.1%}, accuracy {scores['perturbed_acc']:.1%} "
        f"(clean {scores['clean_acc']:.1%})"
    )
resnet = build_classifier("digits:resnet").freeze()
table = transfer_matrix({"cnn": pattern}, {"cnn": model, "resnet": resnet}, test_images)
print(
    f"  fooling rate of the dominant pattern on digits:resnet (transfer): "
    f"{table['cnn']['resnet']:.1%}"
)
strip = torch.cat([pattern.picture(), pattern(test_images[:9])])  # p amplified, then x + p
save(class_grid(strip, None, per_row=10, upscale=2), "dominant_pattern.png")

# %% [markdown]
# ## 6. A conditioned generator: samples of any class in one forward pass
#
# `train_generator` trains a generator G(z, c) whose images the frozen classifier
# assigns to the conditioning class c (hidden label encodings, heavy dropout and a
# cosine-dissimilarity term for diversity). `adversarial_samples` flags the samples the
# target accepts while independent verifiers reject them. 100 steps here.

# %%
generator = train_generator(model, steps=100, batch_size=32, seed=0).eval()
wanted = torch.arange(10).repeat_interleave(4)
with torch.no_grad():
    samples = generator.sample(wanted, torch.Generator().manual_seed(0))
flags = adversarial_samples(model, [resnet], samples, wanted)
print("6. a conditioned generator for digits:cnn (100 steps)")
print(
    f"  digits:cnn accepts {float(flags['target_accepts'].float().mean()):.0%} of 40 samples, "
    f"digits:resnet {accuracy(resnet, samples, wanted):.0%}; adversarial "
    f"(accepted, rejected by digits:resnet): {float(flags['adversarial_rate']):.0%}"
)
save(class_grid(samples, wanted, per_row=4, upscale=2), "conditioned_generator.png")

# %% [markdown]
# ## 7. Layer-wise inversion: inverse blocks trained on noise alone
#
# Cut a classifier into blocks at named layers (`split_classifier`), give each block an
# inverse (`InverterStack`) and train the inverses on smooth noise, block by block and
# then end to end (`train_stack` with the `layerwise` `Schedule`). The stack never sees
# a digit, yet maps real digits' `stage1` features back to the digits. `export_inverter`
# writes it with `torch.export`; `load_exported_inverter` reads it back safely.

# %%
blocks = split_classifier(resnet, ["stem", "stage1"], image_shape=(1, 32, 32))
stack = InverterStack(blocks.shapes)
noise = torch.Generator().manual_seed(0)
schedule = Schedule(num_blocks=2, blockwise_steps=60, resync_steps=60)
train_stack(
    blocks,
    stack,
    schedule,
    LossWeights(),
    batch=lambda step: noise_images("smooth", 32, 1, 32, noise),
)
with torch.no_grad():
    rebuilt = stack(blocks(originals))
print(f"7. a layer-wise inverter of digits:resnet ({schedule.total} steps on noise)")
print(
    f"  digits from their stage1 features: PSNR {float(psnr(rebuilt, originals).mean()):.2f}"
    f" dB, SSIM {float(ssim(rebuilt, originals).mean()):.3f}"
)
save(pair_grid(rebuilt, originals, per_row=10, upscale=2), "layerwise_inversion.png")
path = export_inverter(
    stack,
    depth=2,
    path=OUT / "inverter_stage1.pt2",
    metadata={"classifier": "digits:resnet", "layer": "stage1"},
)
loaded, metadata = load_exported_inverter(path)
with torch.no_grad():
    difference = (loaded(blocks(originals)) - rebuilt).abs().max()
print(
    f"  exported {path.name} (from {metadata['layer']} of {metadata['classifier']}); "
    f"the reloaded inverter differs by at most {float(difference):.1e}"
)

# %% [markdown]
# ## Where next
#
# The families' packages hold their full APIs: `inversion.robust_prior` (feature
# visualisation, manipulation, interpolation), `inversion.gan_inversion` (encoders into
# a GAN's latent space), `inversion.dominant_patterns` (the UAP baselines, downstream
# transfer). The same maths runs under Lightning (multi-GPU, logging, checkpoints) with
# the configs in `configs/`: `python train.py fit --config configs/digits/<method>.yaml`.

# %%
print(f"done in {time.perf_counter() - START:.0f} s; written to {OUT}:")
for written in sorted(OUT.iterdir()):
    print(f"  {written.name}")
