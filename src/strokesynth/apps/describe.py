"""``strokesynth describe``: the networks of an experiment (CT-to-MR cGAN, pseudo-DWI, pseudo-healthy), with sizes
and costs."""

from __future__ import annotations

import torch

from strokesynth.config import replaced
from strokesynth.nets import count_parameters
from strokesynth.nets.profile import forward_flops, peak_forward_bytes
from strokesynth.nets.registry import NETWORKS
from strokesynth.resources import require_memory
from strokesynth.systems.segmenter import build_model


def describe_ctmr(config: str, size: int | None = None) -> str:
    """A text table of the cGAN generator and discriminator and the two segmenters of ``config``.

    Args:
        config: experiment YAML path or shipped name (``paper``, ``tiny``).
        size: square input side for the FLOP count (default: the config's input size).
    """
    from strokesynth.recipes.ctmr import load_ctmr_config
    from strokesynth.systems.pix2pix import GENERATORS

    cfg = load_ctmr_config(config)
    gan, fcn, cgan = cfg.resolved()
    h, w = (size, size) if size else tuple(gan.data.size)
    n_in = len(gan.data.modalities)
    g, gc = gan.generator, gan.discriminator
    shape = f"{g.n_blocks} blocks" if g.name == "resnet" else f"{g.num_downs} levels"
    nets = [
        (f"cGAN generator: {'ResNet' if g.name == 'resnet' else 'U-Net'}, ngf {g.ngf}, {shape}, dropout {g.dropout}"
         f"{' (also at test)' if g.test_dropout else ''}", NETWORKS.build(GENERATORS[g.name], g, n_in), n_in),
        (f"cGAN discriminator: PatchGAN, ndf {gc.ndf}, {gc.n_layers} layers", NETWORKS.build("patchgan", gc, n_in + 1),
         n_in + 1),
    ]
    for name, c in (("FCN", fcn), ("FCN-CGAN", cgan)):
        m = c.model
        what = f"PSPNet-R{m.depth} width {m.width}" if m.name == "pspnet" else m.name
        nets.append((f"{name}: {what}, {c.loss.name} loss", build_model(m, len(c.data.modalities), pretrained=False),
                     len(c.data.modalities)))
    lines = [f"experiment {cfg.name}: inputs {', '.join(gan.data.modalities)} -> {gan.target}; "
             f"{cfg.folds} folds; input {h}x{w}",
             f"{'network':<72} {'in':>3} {'parameters':>12} {'output':>14} {'GFLOP/slice':>12}"]
    for name, net, cin in nets:
        net.eval()
        x = _probe_input(name, net, cin, h, w)
        out = net(x) if not hasattr(net, "set_test_dropout") else net.set_test_dropout(False)(x)
        out = out[0] if isinstance(out, tuple) else out
        flops = forward_flops(net, x) / 1e9
        lines.append(f"{name:<72} {cin:>3} {count_parameters(net):>12,} {'x'.join(map(str, out.shape[1:])):>14} "
                     f"{flops:>12.2f}")
    lines.append("GFLOP/slice: one forward pass of one slice (multiply and add counted separately).")
    return "\n".join(lines)


def _probe_input(name: str, net: torch.nn.Module, cin: int, h: int, w: int) -> torch.Tensor:
    """The zero input (1, cin, h, w) of the FLOP count, after checking that its forward pass fits in memory."""
    require_memory(peak_forward_bytes(net, cin, h, w), "--size", f"a forward pass of {name.split(':')[0]} at {h}x{w} px")
    return torch.zeros(1, cin, h, w)


def _rows(nets: list[tuple[str, torch.nn.Module, int]], h: int, w: int) -> list[str]:
    lines = []
    for name, net, cin in nets:
        net.eval()
        x = _probe_input(name, net, cin, h, w)
        with torch.no_grad():
            out = net(x)
        flops = forward_flops(net, x) / 1e9
        shape = "x".join(map(str, out.shape[1:]))
        lines.append(f"{name:<72} {cin:>3} {count_parameters(net):>12,} {shape:>14} {flops:>12.2f}")
    return lines


def describe_pseudo_dwi(config: str, size: int | None = None) -> str:
    """A text table of Φe, Φg, Φc and Φs of a pseudo-DWI experiment, and the paper's reference
    U-Net (31.04 M) and SLNet (33.84 M) at 64..1024 features, 3 inputs, 2 classes."""
    from types import SimpleNamespace

    from strokesynth.recipes.pseudo_dwi import load_recipe_config
    from strokesynth.systems.pseudo_dwi import PseudoDwi

    cfg = load_recipe_config(config)
    s = cfg.system
    h, w = (size, size) if size else tuple(s.data.size)
    system = PseudoDwi(s)
    what = {"extractor": f"Phi_e feature extractor: U-Net {s.extractor_channels} on the {s.cta.frames}-frame "
                         "bolus window",
            "generator": f"Phi_g generator: U-Net {s.generator_channels} on {'+'.join(s.generator_inputs)}",
            "context": "Phi_c context encoder: five 3x3 stride-2 convs -> 16 features",
            "segmenter": f"Phi_s segmenter: {s.segmenter.name} {s.segmenter.channels}, {s.segmenter.loss} loss"}
    nets = [(what[n], system.networks[n], _in_channels(system.networks[n])) for n in what if n in system.networks]
    ref = SimpleNamespace(channels=[64, 128, 256, 512, 1024], num_classes=2)
    nets += [("reference U-Net (paper): 64..1024, batch norm", NETWORKS.build("unet", ref, 3), 3),
             ("reference SLNet (paper): 64..1024, switchable norm + SE (ratio 1)", NETWORKS.build("slnet", ref, 3), 3)]
    lines = [f"experiment {cfg.name}: maps {', '.join(s.data.modalities)} + CTA features -> pseudo-DWI -> lesion; "
             f"mode {s.mode}; {cfg.folds} folds; input {h}x{w}",
             f"{'network':<72} {'in':>3} {'parameters':>12} {'output':>14} {'GFLOP/slice':>12}",
             *_rows(nets, h, w),
             "GFLOP/slice: one forward pass of one slice (multiply and add counted separately)."]
    return "\n".join(lines)


def _in_channels(net: torch.nn.Module) -> int:
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels


def describe_pseudo_healthy(config: str, size: int | None = None) -> str:
    """A text table of G, R, S (also f_pre's architecture) and the critics of a pseudo-healthy experiment."""
    from strokesynth.recipes.pseudo_healthy import load_recipe_config, row_config
    from strokesynth.systems.pseudo_healthy import PathologyFactorisation

    cfg = load_recipe_config(config)
    s = row_config(cfg.system, "proposed unpaired", cfg.contrasts[0])
    h = w = size or s.data.size
    system = PathologyFactorisation(s)
    what = {"G": f"G pathological -> pseudo-healthy: ngf {s.ngf}, {s.n_blocks} residual blocks, sigmoid",
            "R": "R pseudo-healthy + mask -> pathological: the same, 2 inputs",
            "S": f"S segmentor (and f_pre): residual U-Net {s.segmentor_channels}, LeakyReLU, sigmoid",
            "D_x": f"D_x image critic: {s.critic_channels}, least squares",
            "D_m": "D_m mask critic (unpaired): the same"}
    nets = [(what[n], system.networks[n], _in_channels(system.networks[n])) for n in what]
    lines = [f"experiment {cfg.name}: {', '.join(cfg.contrasts)} slices -> pseudo-healthy + pathology map; "
             f"{cfg.folds} folds; input {h}x{w}",
             f"{'network':<72} {'in':>3} {'parameters':>12} {'output':>14} {'GFLOP/slice':>12}",
             *_rows(nets, h, w),
             "GFLOP/slice: one forward pass of one slice (multiply and add counted separately)."]
    return "\n".join(lines)


def describe_labelmap(config: str, size: int | None = None) -> str:
    """Parameter counts of a label-map augmentation experiment's networks: the translation models, the
    3D lesion GAN and the 3D U-Net (Platscher et al.'s appendix: 5.65 M at 16 base features), plus
    that reference U-Net itself (16-32-64-128-256, 1 input, 2 classes)."""
    from types import SimpleNamespace

    from strokesynth.recipes.labelmap_augmentation import load_recipe_config, model_configs
    from strokesynth.systems.labelmap import build_translation
    from strokesynth.systems.lesion_gan import LesionWGAN

    cfg = load_recipe_config(config)
    s = size or cfg.translation.size
    lines = [f"experiment {cfg.name}: one-hot label map ({cfg.table}) -> DWI slices at {s}x{s}; lesion GAN and "
             "3D U-Net on the data grid",
             f"{'network':<72} {'parameters':>12}"]
    for key, tcfg in model_configs(cfg).items():
        system = build_translation(replaced(tcfg, size=s))
        for name, net in system.networks.items():
            lines.append(f"{(key + ' ' + name):<72} {count_parameters(net):>12,}")
    p = cfg.phantom
    shape = [p.size, p.size, p.slices] if cfg.dataset == "phantom" else [s, s, 32]
    gan = LesionWGAN(replaced(cfg.lesion_gan, shape=shape))
    for name, net in gan.networks.items():
        lines.append(f"{('lesion GAN ' + name + ' on ' + 'x'.join(map(str, shape))):<72} {count_parameters(net):>12,}")
    m = cfg.segmenter.model
    lines.append(f"{('3D U-Net ' + str(m.channels) + ' (this config)'):<72} "
                 f"{count_parameters(build_model(m, len(cfg.segmenter.data.modalities), pretrained=False)):>12,}")
    ref = SimpleNamespace(name="unet3d", channels=[16, 32, 64, 128, 256], strides=[[2, 2, 2]] * 4, norm="batch",
                          num_classes=2, dropout=0.02)
    lines.append(f"{'3D U-Net reference: Platscher et al. 16-32-64-128-256 (paper: 5.65 M)':<72} "
                 f"{count_parameters(NETWORKS.build('unet3d', ref, 1)):>12,}")
    return "\n".join(lines)
