"""Networks: shapes, output stride, dilations, (2, 2, 1) strides, pretrained loading, fine-tuning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from strokesynth.errors import DataError
from strokesynth.losses import make_loss
from strokesynth.nets import DilatedResNet, PSPNet, UNet, VNet, count_parameters, fine_tuning_stages
from strokesynth.nets.blocks import init_weights


def test_pspnet_shapes_output_stride_and_dilations():
    net = PSPNet(in_channels=5, num_classes=2, depth=50, width=8).eval()
    x = torch.randn(2, 5, 64, 48)
    assert net(x).shape == (2, 2, 64, 48)
    c3, c4 = net.backbone(net.initializer(x))
    assert c3.shape[-2:] == (8, 6) and c4.shape[-2:] == (8, 6)  # output stride 8
    assert net.backbone.layer3[1].conv2.dilation == (2, 2) and net.backbone.layer4[1].conv2.dilation == (4, 4)
    assert net.backbone.layer3[0].conv2.stride == (1, 1) and net.backbone.layer4[0].conv2.stride == (1, 1)
    assert net.ppm.bins == (1, 2, 3, 6) and net.ppm.out_channels == 2 * c4.shape[1]
    net.train()
    main, aux = net(x)
    assert main.shape == aux.shape == (2, 2, 64, 48)
    assert PSPNet(6, 2, depth=101, width=8, aux=False).train()(torch.randn(1, 6, 32, 32)).shape == (1, 2, 32, 32)
    assert net.initializer.proj.in_channels == 5 and net.initializer.proj.out_channels == 3


def test_resnet_keys_match_torchvision_naming():
    keys = DilatedResNet(50, 64).state_dict().keys()
    assert len(keys) == 318  # torchvision resnet50 has 320 entries, two of them fc.weight/fc.bias
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
              "layer3.5.conv3.weight", "layer4.2.bn3.num_batches_tracked"):
        assert k in keys
    assert len(DilatedResNet(101, 64).state_dict()) == 318 + 17 * 3 * 6  # 17 more bottlenecks, 18 entries each


def test_pretrained_backbone_from_local_file(tmp_path):
    src = DilatedResNet(50, 8)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 8 * 32)
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    net = PSPNet(5, 2, 50, width=8)
    loaded = net.load_pretrained(path)
    assert len(loaded) == 318
    assert torch.equal(net.backbone.layer4[2].conv3.weight, src.layer4[2].conv3.weight)

    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(DataError, match="wrong.pth.*missing"):
        net.load_pretrained(tmp_path / "wrong.pth")
    torch.save(DilatedResNet(50, 16).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(DataError, match="shape mismatch"):
        net.load_pretrained(tmp_path / "wide.pth")
    with pytest.raises(DataError, match="not found"):
        net.load_pretrained(tmp_path / "absent.pth")


def test_two_stage_fine_tuning_freezes_backbone():
    torch.manual_seed(0)
    net = PSPNet(5, 2, 50, width=8)
    stage1, stage2 = fine_tuning_stages(net)
    assert stage1["lr"] == 1e-2 and stage2["lr"] == 1e-4
    net.freeze_backbone(True)
    net.train()
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    head_before = net.head[-1].weight.clone()
    opt = torch.optim.RMSprop(stage1["params"], lr=stage1["lr"])
    x, y = torch.randn(2, 5, 32, 32), (torch.rand(2, 1, 32, 32) > 0.8).long()
    main, aux = net(x)
    (make_loss("focal")(main, y) + 0.4 * make_loss("focal")(aux, y)).backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in net.backbone.state_dict().items())  # weights and BN stats
    assert not torch.equal(head_before, net.head[-1].weight)
    net.freeze_backbone(False)
    assert all(p.requires_grad for p in net.parameters()) and net.train().backbone.training


@pytest.mark.parametrize("dims", [2, 3])
def test_unet_and_vnet_with_thin_slabs(dims):
    strides = [(2, 2, 1)] * 3 if dims == 3 else [2] * 3
    shape = (1, 5, 32, 32, 2) if dims == 3 else (1, 5, 32, 32)
    for net in (UNet(dims, 5, 2, (8, 16, 32, 64), strides), VNet(dims, 5, 2, (8, 16, 32, 64), (1, 2, 2, 2), strides)):
        assert net(torch.randn(*shape)).shape == (1, 2, *shape[2:])
        assert count_parameters(net) > 0


def test_tiny_models_fit_a_batch():
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.randn(4, 5, 4, 4), scale_factor=8)  # 8x8-pixel blocks
    y = (x[:, 1:2] > 0.5).long()  # lesion where channel 1 is high
    for net in (UNet(2, 5, 2, (8, 16, 32)), PSPNet(5, 2, 50, width=4, aux=False)):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        loss_fn = make_loss("ce")
        losses = []
        for _ in range(25):
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < 0.6 * losses[0], type(net).__name__


def test_basicunet_floor_is_monai_as_it_comes():
    from monai.networks.nets import BasicUNet

    from strokesynth.nets.registry import NETWORKS
    from strokesynth.systems.segmenter import ModelConfig

    cfg = ModelConfig(name="basicunet", channels=[16, 32, 64, 128, 256])
    ours = NETWORKS.build("basicunet", cfg, 5)
    ref = BasicUNet(spatial_dims=2, in_channels=5, out_channels=2, features=(16, 32, 64, 128, 256, 16))
    assert [p.shape for p in ours.parameters()] == [p.shape for p in ref.parameters()]
    assert NETWORKS.info("basicunet") == {"dims": 2, "role": "reference"}
    assert ours(torch.zeros(1, 5, 32, 32)).shape == (1, 2, 32, 32)
    with pytest.raises(ValueError, match="5 encoder features"):
        NETWORKS.build("basicunet", ModelConfig(name="basicunet", channels=[8, 16]), 5)


def test_fcn8s_and_r2unet_segment_slices_of_the_pseudo_dwi_table3():
    from strokesynth.nets.fcn import BilinearUp2, FCN8s
    from strokesynth.nets.r2unet import R2UNet, RecurrentConv

    torch.manual_seed(0)
    x = torch.randn(2, 4, 64, 48)
    for net in (FCN8s(4, 2, [8, 16, 32, 64]), R2UNet(4, 2, [8, 16, 32])):
        out = net(x)
        assert out.shape == (2, 2, 64, 48)
        out.mean().backward()
        assert all(p.grad is not None for p in net.parameters())
    # the learned x2 up-sampling starts bilinear (the interior of a ramp stays a ramp, as F.interpolate)
    # and keeps that start through the toolkit's weight init, which only touches nn.Conv* layers
    up = init_weights(nn.Sequential(BilinearUp2(1)), kind="xavier", gain=1.0)[0]
    ramp = torch.arange(8.0).reshape(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    ref = F.interpolate(ramp, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up(ramp)[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-5)
    # an RCL applies one conv t + 1 times: h = f(x), h = f(x + h), ...
    rcl = RecurrentConv(3, t=2).eval()
    z = torch.randn(1, 3, 8, 8)
    h = rcl.f(z)
    for _ in range(2):
        h = rcl.f(z + h)
    assert torch.allclose(rcl(z), h) and sum(p.numel() for p in rcl.parameters()) == 3 * 3 * 9 + 3 + 6
    # fewer blocks keep the skips that exist (FCN-16s with two, FCN-32s with one): small configs build
    assert len(FCN8s(4, 2, [8, 16]).score_skips) == 1 and len(FCN8s(4, 2, [8]).score_skips) == 0
    assert FCN8s(4, 2, [8, 16]).eval()(torch.zeros(1, 4, 48, 32)).shape == (1, 2, 48, 32)


def test_table3_networks_at_paper_width_have_the_documented_sizes():
    # docs/pseudo_dwi.md: 64..1024 features, 3 inputs, 2 classes
    from types import SimpleNamespace

    from strokesynth.nets.registry import NETWORKS

    cfg = SimpleNamespace(channels=[64, 128, 256, 512, 1024], num_classes=2)
    counts = {k: count_parameters(NETWORKS.build(k, cfg, 3)) for k in ("fcn", "r2unet", "resunet")}
    assert counts == {"fcn": 54_321_350, "r2unet": 39_091_458, "resunet": 25_982_845}
