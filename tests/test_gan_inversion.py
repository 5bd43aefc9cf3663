import lightning.pytorch as pl
import pytest
import torch
from trainers import quiet_trainer

from inversion import InversionError
from inversion.gan_inversion import (
    ConvEncoder,
    DCGANGenerator,
    EncoderWeights,
    build_generator,
    corrupt,
    encoder_loss,
    inversion_metrics,
    latent_stream,
    new_encoder,
    train_encoder,
)
from inversion.seeds import derive_seed
from model_inversion.datamodules import DigitsDataModule, LatentCodesDataModule
from model_inversion.datamodules.gan_inversion import LatentBatches
from model_inversion.lightning_modules import DCGANModule, GANInversion


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    return quiet_trainer(default_root_dir=tmp_path, **kwargs)


def test_networks_map_codes_to_images_and_back():
    generator = DCGANGenerator(latent_dim=8, width=8).eval()
    images = generator(torch.randn(3, 8))
    assert images.shape == (3, 1, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert ConvEncoder(8, width=8)(images).shape == (3, 8)
    with pytest.raises(InversionError, match="power of two"):
        DCGANGenerator(image_size=24)


def test_corrupt_replaces_one_square_per_image():
    images = torch.zeros(4, 1, 16, 16)
    damaged = corrupt(images, 5, torch.Generator().manual_seed(0))
    changed = (damaged != images).flatten(1).sum(1)
    assert changed.tolist() == [25] * 4  # uniform noise is never exactly 0
    with pytest.raises(InversionError, match="patch"):
        corrupt(images, 17)


def test_encoder_learns_to_recover_codes():
    torch.manual_seed(0)
    generator = DCGANGenerator(latent_dim=4, width=8).eval().requires_grad_(False)
    encoder = ConvEncoder(4, width=8)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-3)
    z = torch.randn(32, 4)
    first = None
    for _ in range(30):
        loss, parts = encoder_loss(encoder, generator, z, EncoderWeights())
        first = first or float(parts["latent"].detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(parts["latent"]) < 0.5 * first
    metrics, images = inversion_metrics(encoder.eval(), generator, z[:8], patch=6)
    assert set(images) == {"original", "reconstructed", "corrupted", "repaired"}
    assert metrics["latent_cosine"].shape == (8,)


@pytest.fixture(scope="module")
def dcgan_checkpoint(tmp_path_factory):
    """A DCGANModule checkpoint after two steps (a generator spec)."""
    root = tmp_path_factory.mktemp("dcgan")
    module = DCGANModule(latent_dim=8, width=8)
    fit = trainer(root, max_steps=2, limit_val_batches=1)
    fit.fit(module, datamodule=DigitsDataModule(batch_size=8))
    path = root / "dcgan.ckpt"
    fit.save_checkpoint(path)
    return path, module


def test_dcgan_under_ddp_needs_the_unused_parameter_search(tmp_path):
    module = DCGANModule(latent_dim=8, width=8)
    module.trainer = trainer(tmp_path, devices=1, strategy="ddp")
    with pytest.raises(InversionError, match="ddp_find_unused_parameters_true"):
        module.setup("fit")
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    fit = trainer(
        tmp_path,
        devices=2,
        strategy="ddp_spawn_find_unused_parameters_true",
        max_steps=2,
        limit_val_batches=1,
    )
    fit.fit(module, datamodule=DigitsDataModule(batch_size=8))
    assert fit.state.finished
    changed = {
        k.split(".")[0] for k, v in module.state_dict().items() if not torch.equal(v, before[k])
    }
    assert changed == {"generator", "discriminator"}


def test_a_dcgan_checkpoint_is_a_generator_spec(dcgan_checkpoint):
    path, module = dcgan_checkpoint
    generator = build_generator(str(path))
    assert not any(p.requires_grad for p in generator.parameters()) and not generator.training
    z = torch.randn(4, 8)
    torch.testing.assert_close(generator(z), module.generator.eval()(z))
    with pytest.raises(InversionError, match="digits:dcgan"):
        build_generator("digits:gan")


def test_gan_inversion_trains_on_codes_only(dcgan_checkpoint, tmp_path):
    path, _ = dcgan_checkpoint
    module = GANInversion(generator=str(path), width=8, steps=3)
    fit = trainer(tmp_path, limit_val_batches=1)
    fit.fit(module, datamodule=LatentCodesDataModule(latent_dim=8, batch_size=4, num_val=4))
    assert fit.global_step == 3
    assert all(k.startswith("encoder.") for k in module.state_dict())
    metrics = fit.callback_metrics
    assert {"val/latent_mse", "val/latent_cosine", "val/psnr_repaired"} <= set(metrics)
    with pytest.raises(InversionError, match="LatentCodesDataModule"):
        trainer(tmp_path).fit(GANInversion(generator=str(path), width=8), DigitsDataModule())
    with pytest.raises(InversionError, match="latent_dim"):
        trainer(tmp_path).fit(module, datamodule=LatentCodesDataModule(latent_dim=16))
    # real digits are projected onto the generator at test time
    batch = next(iter(DigitsDataModule(batch_size=4).test_dataloader()))
    out = module.test_step(batch, 0)
    assert out["images"].shape == out["originals"].shape == (4, 1, 32, 32)


def test_train_encoder_is_the_seeded_loop_it_replaced():
    """The plain loop: encoder from torch.manual_seed(seed), codes from one seeded stream."""
    generator = DCGANGenerator(latent_dim=4, width=8).eval().requires_grad_(False)
    torch.manual_seed(3)
    encoder = ConvEncoder(4, width=8)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(3)
    for _ in range(3):
        z = torch.randn(5, 4, generator=rng)
        loss, _ = encoder_loss(encoder, generator, z, EncoderWeights())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    state = torch.get_rng_state()
    trained = train_encoder(generator, steps=3, batch=5, width=8, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[key], value, rtol=1e-6, atol=1e-7)
    first = next(iter(latent_stream(5, 4, 3)))
    torch.testing.assert_close(first, torch.randn(5, 4, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(InversionError, match="ran out after 1 of 3"):
        train_encoder(generator, steps=3, width=8, latents=[torch.randn(2, 4)])


def test_gan_inversion_module_is_train_encoder(dcgan_checkpoint, tmp_path):
    """A few Trainer steps of GANInversion = train_encoder on the DataModule's codes."""
    path, _ = dcgan_checkpoint
    module = GANInversion(generator=str(path), width=8, steps=4, lr=3e-3, seed=5)
    generator = build_generator(str(path))
    torch.testing.assert_close(
        module.encoder.state_dict(), new_encoder(generator, 8, 5).state_dict(), rtol=0, atol=0
    )
    data = LatentCodesDataModule(latent_dim=8, batch_size=6, num_val=4, seed=7)
    trainer(tmp_path, limit_val_batches=0).fit(module, datamodule=data)
    codes = LatentBatches(8, 6, 4, derive_seed(7, 0))  # the DataModule's stream on rank 0
    expected = train_encoder(
        generator,
        EncoderWeights(),
        steps=4,
        lr=3e-3,
        width=8,
        seed=5,
        latents=[codes[step] for step in range(4)],
    )
    got = module.encoder.state_dict()
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
