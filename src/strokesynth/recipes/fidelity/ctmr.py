"""Fidelity of the ``ctmr-cgan`` recipe to Rubin & Abulnaga (CT-to-MR cGAN, FCN-CGAN)."""

from __future__ import annotations

from typing import Any

from strokesynth.recipes.fidelity import Spec, count
from strokesynth.recipes.fidelity.segmentation import _NAMES

PAPER = "Rubin & Abulnaga (CT-to-MR conditional GAN whose generated DWI helps the segmenter)"


def configs() -> tuple[Any, Any]:
    from strokesynth.recipes.ctmr import load_ctmr_config

    return tuple(load_ctmr_config(name).resolved() for name in ("paper", "tiny"))  # type: ignore[return-value]


def _generator(c: Any) -> str:
    from strokesynth.nets.registry import NETWORKS
    from strokesynth.systems.pix2pix import GENERATORS

    gan = c[0]
    g = gan.generator
    net = NETWORKS.build(GENERATORS[g.name], g, len(gan.data.modalities))
    return f"{g.name} {g.n_blocks} blocks, ngf {g.ngf}: {count(net)}"


def _discriminator(c: Any) -> str:
    from strokesynth.nets.registry import NETWORKS

    gan = c[0]
    d = gan.discriminator
    return f"PatchGAN ndf {d.ndf}, {d.n_layers} layers: {count(NETWORKS.build('patchgan', d, len(gan.data.modalities) + 1))}"


def _gan_training(c: Any) -> str:
    gan = c[0]
    o = gan.optim
    return (f"{gan.gan_loss} GAN + {gan.lambda_l1:g} x L1; Adam {o.lr:g} {tuple(o.betas)}; batch {gan.run.batch_size}; "
            f"{gan.run.epochs} epochs")


def _gan_data(c: Any) -> str:
    gan = c[0]
    if gan.run.selection == "last":
        return "the whole training part of its fold; the last epoch kept"
    return f"{1 - gan.run.inner_fraction:.0%} of its fold's training subjects ({gan.run.selection} split held out)"


def _fcn(c: Any) -> str:
    fcn = c[1]
    return f"{fcn.model.name}-R{fcn.model.depth}, {fcn.loss.name} γ {fcn.loss.gamma:g}"


def _pretraining(c: Any) -> str:
    fcn = c[1]
    return "from scratch" if fcn.fine_tune_epochs <= 0 else f"two stages ({fcn.fine_tune_epochs} epochs first)"


def _sampling(c: Any) -> str:
    def one(f: float) -> str:
        return "uniform" if f == 0 else f"{f:.0%} lesion slices"

    return f"cGAN {one(c[0].run.lesion_fraction)}; FCN {one(c[1].run.lesion_fraction)}"


SPECS = [
    Spec("cGAN inputs -> target (method)", "CT, CBF, CBV, MTT, Tmax -> DWI",
         lambda c: ", ".join(_NAMES.get(m, m) for m in c[0].data.modalities) + f" -> {c[0].target.upper()}",
         "systems/pix2pix.py:GANConfig"),
    Spec("Generator and parameters (method)", "resnet 9 blocks, ngf 64: 11,378,177", _generator,
         "nets/pix2pix.py:ResnetGenerator"),
    Spec("Discriminator and parameters (method)", "PatchGAN ndf 64, 3 layers: 2,766,913", _discriminator,
         "nets/pix2pix.py:PatchDiscriminator"),
    Spec("Dropout as noise (method)", "0.5, at training and test",
         lambda c: f"{c[0].generator.dropout:g}, at training{' and test' if c[0].generator.test_dropout else ''}",
         "nets/pix2pix.py:NoiseDropout"),
    Spec("cGAN training (experiments)", "vanilla GAN + 100 x L1; Adam 0.0002 (0.5, 0.999); batch 1; 200 epochs",
         _gan_training, "systems/pix2pix.py:GANConfig"),
    Spec("Slice size", "256x256", lambda c: "x".join(map(str, c[0].data.size)), "configs/ctmr/paper.yaml"),
    Spec("Each fold's cGAN trains on (experiments)", "the whole training part of its fold; the last epoch kept",
         _gan_data, "systems/pix2pix.py:_gan_run"),
    Spec("FCN (method)", "pspnet-R50, focal γ 1", _fcn, "recipes/ctmr.py:_pspnet_focal"),
    Spec("FCN pretrained backbone", "two stages (fine-tuned from ImageNet)", _pretraining,
         "systems/segmenter.py:pretraining_warning",
         "the user names the local backbone file (segmentation.model.pretrained); without one the run warns "
         "in its log, summary and report; the stage-1 length is this toolkit's choice"),
    Spec("FCN-CGAN input", "the FCN's 5 channels + the generated DWI", lambda c: f"the FCN's {len(c[1].data.modalities)} "
         f"channels + the generated DWI" if c[2].data.modalities[-1] == "dwi_gen" else "other",
         "recipes/ctmr.py:CtMrConfig.resolved"),
    Spec("Batch sampling", "cGAN uniform; FCN uniform", _sampling, "engine/config.py:RunConfig.lesion_fraction"),
]
