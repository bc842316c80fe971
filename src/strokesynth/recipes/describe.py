"""``strokesynth describe``: the networks of a CT-to-MR experiment, with sizes and costs."""

from __future__ import annotations

import torch

from strokesynth.nets import count_parameters
from strokesynth.nets.profile import forward_flops
from strokesynth.nets.registry import NETWORKS
from strokesynth.systems.segmenter import build_model


def describe_ctmr(config: str, size: int | None = None) -> str:
    """A text table of the cGAN generator and discriminator and the two segmenters of ``config``.

    Args:
        config: experiment YAML path or shipped name (``paper``, ``tiny``).
        size: square input side for the FLOP count (default: the config's input size).
    """
    from strokesynth.recipes.ctmr import load_ctmr_config

    cfg = load_ctmr_config(config)
    gan, fcn, cgan = cfg.resolved()
    h, w = (size, size) if size else tuple(gan.data.size)
    n_in = len(gan.data.modalities)
    g, gc = gan.generator, gan.discriminator
    nets = [
        (f"cGAN generator: ResNet, ngf {g.ngf}, {g.n_blocks} blocks, dropout {g.dropout}"
         f"{' (also at test)' if g.test_dropout else ''}", NETWORKS.build("resnet_generator", g, n_in), n_in),
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
        x = torch.zeros(1, cin, h, w)
        out = net(x) if not hasattr(net, "set_test_dropout") else net.set_test_dropout(False)(x)
        out = out[0] if isinstance(out, tuple) else out
        flops = forward_flops(net, x) / 1e9
        lines.append(f"{name:<72} {cin:>3} {count_parameters(net):>12,} {'x'.join(map(str, out.shape[1:])):>14} "
                     f"{flops:>12.2f}")
    lines.append("GFLOP/slice: one forward pass of one slice (multiply and add counted separately).")
    return "\n".join(lines)
