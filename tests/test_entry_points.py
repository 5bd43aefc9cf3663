"""Each LightningModule is a thin shell: it computes what its plain-PyTorch entry point does.

The docs' numbers come from the entry points in ``inversion/<family>/`` (the tables call
them); these tests pin the modules to them, so the numbers describe the modules too.
(Dominant patterns, GAN inversion and the conditioned generator are pinned in their own
test files.)
"""

import pytest
import torch
from trainers import quiet_trainer

from inversion import build_classifier, seeds
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.data.digits import load_digits_split
from inversion.layerwise import BlockOptions, InverterStack, LossWeights, Schedule, train_stack
from inversion.models.split import split_classifier
from inversion.robust_prior import TOOL_DEFAULTS, apply_tool, tool_attack
from model_inversion.datamodules import (
    ClassTargetsDataModule,
    DigitsDataModule,
    SyntheticImagesDataModule,
)
from model_inversion.datamodules.layerwise import NoiseBatches
from model_inversion.lightning_modules import (
    ClassInversion,
    LayerwiseInversion,
    RepresentationTools,
)

TINY_PII = {"ensemble": 2, "steps_per_stage": 3, "zoom_stages": 2, "warmup_steps": 1}


def test_class_inversion_module_is_the_class_inverter():
    module = ClassInversion(classifier="digits:cnn", recipe="pii", options=TINY_PII, seed=3)
    data = ClassTargetsDataModule(num_classes=10, classes=[2, 5, 7], batch_size=2)
    quiet_trainer(devices=1, limit_val_batches=0).fit(module, datamodule=data)

    model = build_classifier("digits:cnn").freeze()
    inverter = ClassInverter(model, recipe_from("pii", TINY_PII), 32, 1, seeds.generator(3, 0))
    expected = torch.cat([inverter.invert(torch.tensor(b)) for b in ([2, 5], [7])])
    torch.testing.assert_close(module.produced, expected, rtol=1e-5, atol=1e-6)


def test_layerwise_module_is_train_stack():
    options = {"blockwise_steps": 2, "resync_steps": 3, "export_path": None}
    torch.manual_seed(0)
    module = LayerwiseInversion(classifier="digits:cnn", layers=["stem", "stage1"], **options)
    data = SyntheticImagesDataModule(source="smooth", batch_size=4, seed=5)
    quiet_trainer(devices=1, limit_val_batches=0).fit(module, datamodule=data)

    torch.manual_seed(0)  # the module builds the same things in the same order
    classifier = build_classifier("digits:cnn").freeze()
    blocks = split_classifier(classifier, ["stem", "stage1"], (1, 32, 32))
    stack = InverterStack(blocks.shapes, BlockOptions())
    schedule = Schedule(2, blockwise_steps=2, resync_steps=3)
    noise = NoiseBatches("smooth", (1, 32, 32), 4, schedule.total, seeds.derive_seed(5, 0))
    train_stack(blocks, stack, schedule, LossWeights(), lambda step: noise[step][0])
    for name, value in stack.state_dict().items():
        torch.testing.assert_close(module.inverter.state_dict()[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tool", ["invert", "visualize", "manipulate", "interpolate"])
def test_representation_tools_module_is_apply_tool(tool):
    module = RepresentationTools(classifier="digits:cnn", tool=tool, steps=3, seed=4)
    returned = []
    test_step = module.test_step

    def keep(batch, batch_idx):
        returned.append(test_step(batch, batch_idx))
        return returned[-1]

    module.test_step = keep
    trainer = quiet_trainer(devices=1, limit_test_batches=2)
    logged = trainer.test(module, datamodule=DigitsDataModule(batch_size=4))[0]

    model = build_classifier("digits:cnn").freeze()
    images, labels = (t[:8] for t in load_digits_split("test"))
    attack = tool_attack(TOOL_DEFAULTS[tool][0], 3)
    distances = []
    for batch_idx in range(2):
        part = slice(4 * batch_idx, 4 * batch_idx + 4)
        expected = apply_tool(
            model, tool, images[part], labels[part], attack, seeds.generator(4, batch_idx, 0)
        )
        distances += expected.pop("repr_distance", torch.zeros(0)).tolist()
        expected.pop("agree_target", None)
        assert returned[batch_idx].keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(returned[batch_idx][key], value)
    if tool == "invert":
        assert logged["repr_distance"] == pytest.approx(sum(distances) / len(distances), rel=1e-5)
