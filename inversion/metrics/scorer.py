"""One object that scores produced images: verifier top-1/top-5, IS, FID and KID.

Used by the metric callback (per validation/test step, synced across DDP processes by
torchmetrics) and by ``evaluate.py`` on folders. All metric states live on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy

from inversion.errors import InversionError
from inversion.metrics.features import FeatureExtractor, build_feature_extractor, short_name
from inversion.metrics.fid import FrechetDistance
from inversion.metrics.inception_score import InceptionScore
from inversion.metrics.kid import KernelDistance
from inversion.metrics.reconstruction import agreement, psnr, ssim
from inversion.metrics.reference import reference_features, reference_statistics
from inversion.models import build_classifier


def top_k_accuracy(num_classes: int, k: int) -> MulticlassAccuracy:
    """Fraction of images whose label is among the top-k predictions (labels -1 ignored)."""
    return MulticlassAccuracy(num_classes, top_k=k, average="micro", ignore_index=-1)


class ImageScorer(nn.Module):
    """Verifier accuracy, Inception Score, FID, KID and reconstruction quality of images.

    When produced images reconstruct real ones (``originals``, paired), it also gives
    ``psnr`` and ``ssim`` (means over images) and, for each verifier, ``agree_<name>``:
    the fraction of reconstructions it classifies as it classifies their originals
    (their mean over verifiers is ``agree_verifiers``).

    Args:
        verifiers: Classifier specs that did not produce the images; each gives
            ``top1_<name>`` and ``top5_<name>`` (labels below 0 are ignored), and
            their mean over verifiers ``top1_verifiers``/``top5_verifiers``. Without any
            label of 0 or more (labels None, or all below 0) there is no accuracy: these
            keys are absent from the results, never 0.
        feature: ``inception`` (standard InceptionV3), a classifier spec (e.g.
            ``digits:resnet``; metric names then say so: ``fid_digits-resnet``), or
            None for no IS/FID/KID.
        inception_weights: Local InceptionV3 weights file (see InceptionFeatures).
        fid: Compute FID (needs reference images or statistics).
        inception_score: Compute the Inception Score (shuffled splits, as torch-fidelity:
            the same whatever the order of the images or the number of processes).
        splits: Inception Score splits.
        kid: Compute KID, ``kid`` and ``kid_std`` (needs reference images; torch-fidelity's
            definition, subset size clamped to the sample counts).
    """

    def __init__(
        self,
        verifiers: Sequence[str] = (),
        feature: str | None = "inception",
        inception_weights: str | None = None,
        fid: bool = True,
        inception_score: bool = True,
        splits: int = 10,
        kid: bool = True,
    ) -> None:
        super().__init__()
        self.verifiers = nn.ModuleDict()
        self.accuracy = nn.ModuleDict()
        for spec in verifiers:
            name = short_name(spec)
            verifier = build_classifier(spec).freeze()
            self.verifiers[name] = verifier
            metrics: dict[str, Metric | MetricCollection] = {
                "top1": top_k_accuracy(verifier.num_classes, 1)
            }
            if verifier.num_classes >= 5:
                metrics["top5"] = top_k_accuracy(verifier.num_classes, 5)
            self.accuracy[name] = MetricCollection(metrics)
        self.extractor: FeatureExtractor | None = None
        self.fid: FrechetDistance | None = None
        self.inception_score: InceptionScore | None = None
        self.kid: KernelDistance | None = None
        if feature is not None and (fid or inception_score or kid):
            self.extractor = build_feature_extractor(feature, inception_weights)
            if fid:
                self.fid = FrechetDistance(feature_dim(self.extractor))
            if inception_score:
                self.inception_score = InceptionScore(splits)
            if kid:
                self.kid = KernelDistance()
        self.reconstruction = nn.ModuleDict({"psnr": MeanMetric(), "ssim": MeanMetric()})
        self.agreement = nn.ModuleDict({name: MeanMetric() for name in self.verifiers})
        self.has_reference = False  # reference statistics/features were set
        self.reference_seen = False  # reference images came with the updates
        self.num_updates = 0
        self.num_images = SumMetric()
        self.num_labelled = SumMetric()  # images with a class: accuracy only if any

    def set_reference(self, source: str, batch_size: int = 64, progress: bool = True) -> None:
        """Use ``digits:SPLIT`` or an image folder as FID/KID reference (embedded once, cached)."""
        if self.extractor is None or (self.fid is None and self.kid is None):
            return
        if self.kid is not None:  # first, so that FID's statistics come from these features
            self.kid.set_reference(reference_features(self.extractor, source, batch_size, progress))
        if self.fid is not None:
            mean, cov, _ = reference_statistics(self.extractor, source, batch_size, progress)
            self.fid.set_reference(mean, cov)
        self.has_reference = True

    @torch.no_grad()
    def update(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        reference: Tensor | None = None,
        originals: Tensor | None = None,
    ) -> None:
        """Score a batch of produced images (N x C x H x W in [0, 1], or uint8).

        Args:
            images: The produced images.
            labels: Their target classes (verifier top-1/top-5), or None.
            reference: Real images for the FID/KID reference, or None.
            originals: The real images that ``images`` reconstruct, pair by pair, or None.
        """
        self.num_updates += 1
        self.num_images.update(images.new_tensor(images.shape[0], dtype=torch.float32))
        float_images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if originals is not None:
            originals = originals.float() / 255 if originals.dtype == torch.uint8 else originals
            originals = originals.float()
            _metric(self.reconstruction["psnr"]).update(psnr(float_images, originals))
            _metric(self.reconstruction["ssim"]).update(ssim(float_images, originals))
            for name, verifier in self.verifiers.items():
                _metric(self.agreement[name]).update(agreement(verifier, float_images, originals))
        labelled = 0 if labels is None else int((labels >= 0).sum())
        self.num_labelled.update(images.new_tensor(labelled, dtype=torch.float32))
        if labels is not None and labelled > 0:
            labels = labels.clamp(min=-1)  # any label below 0 means no class: ignored
            for name, verifier in self.verifiers.items():
                _collection(self.accuracy[name]).update(verifier(float_images), labels)
        if self.extractor is not None:
            pool, logits = self.extractor(images)
            if self.fid is not None:
                self.fid.update(pool)
            if self.inception_score is not None:
                self.inception_score.update(logits)
            if self.kid is not None:
                self.kid.update(pool)
            if reference is not None and not self.has_reference:
                real_pool = self.extractor(reference)[0]
                self.reference_seen = True
                if self.fid is not None:
                    self.fid.update(real_pool, real=True)
                if self.kid is not None:
                    self.kid.update(real_pool, real=True)

    def compute(self) -> dict[str, float]:
        """All metrics as floats (synced across processes). Call once per epoch."""
        results: dict[str, float] = {"images": float(self.num_images.compute())}
        labelled = float(self.num_labelled.compute()) > 0  # synced: same on every process
        for name, collection in self.accuracy.items() if labelled else ():
            for key, value in _collection(collection).compute().items():
                results[f"{key}_{name}"] = float(value)
        if self.reconstruction["psnr"].update_called:
            for key, metric in self.reconstruction.items():
                results[key] = float(_metric(metric).compute())
            for name, metric in self.agreement.items():
                results[f"agree_{name}"] = float(_metric(metric).compute())
        for k in ("top1", "top5", "agree"):
            values = [v for key, v in results.items() if key.startswith(f"{k}_")]
            if len(values) > 1:
                results[f"{k}_verifiers"] = sum(values) / len(values)
        if self.inception_score is not None and self.extractor is not None:
            mean, std = self.inception_score.compute()
            name = self.extractor.metric_name("is")
            results[name], results[f"{name}_std"] = float(mean), float(std)
        if self.extractor is None or (self.fid is None and self.kid is None):
            return results
        if not self.has_reference and not self.reference_seen:
            raise InversionError(
                f"{'FID' if self.fid is not None else 'KID'} needs reference images: give a "
                "reference (digits:test or an image folder), or return 'reference' images "
                "from the module's steps."
            )
        if self.fid is not None:
            results[self.extractor.metric_name("fid")] = float(self.fid.compute())
        if self.kid is not None:
            mean, std = self.kid.compute()
            name = self.extractor.metric_name("kid")
            results[name], results[f"{name}_std"] = float(mean), float(std)
        return results

    def updated(self) -> bool:
        """Whether :meth:`update` ran since the last reset (in this process)."""
        return self.num_updates > 0

    def reset(self) -> None:
        """Forget the images seen so far (the reference statistics stay)."""
        self.num_updates = 0
        self.reference_seen = False
        self.num_images.reset()
        self.num_labelled.reset()
        for collection in self.accuracy.values():
            _collection(collection).reset()
        for metric in (*self.reconstruction.values(), *self.agreement.values()):
            _metric(metric).reset()
        for optional in (self.fid, self.inception_score, self.kid):
            if optional is not None:
                optional.reset()


def feature_dim(extractor: nn.Module) -> int:
    """The length of the pool features an extractor returns (first of its outputs)."""
    probe = torch.zeros(2, 3, 32, 32, device=next(extractor.parameters()).device)
    with torch.no_grad():
        return extractor(probe)[0].shape[1]


def _metric(module: nn.Module) -> Metric:
    """A metric kept in an ``nn.ModuleDict``, which types its values as plain modules."""
    return cast(Metric, module)


def _collection(module: nn.Module) -> MetricCollection:
    """A metric collection kept in an ``nn.ModuleDict`` (see :func:`_metric`)."""
    return cast(MetricCollection, module)
