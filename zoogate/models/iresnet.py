"""iResNet (Duta et al. 2020, "Improved Residual Networks for Image and Video Recognition").

Written for zoogate from the paper's description and the layer layout of the official repository
(iduta/iresnet): a 7x7/2 stem without max-pool; four stages of bottlenecks, each stage starting with
stride 2; stage-position-dependent placement of BatchNorm/ReLU ("start", "middle", "end" blocks);
projection shortcuts that do the spatial projection with a 3x3/2 max-pool and the channel projection
with a 1x1 conv + BN. Parameter counts: 25.557 / 44.549 / 60.193 / 64.674 M for 50/101/152/200.
"""

from __future__ import annotations

import torch
from torch import nn

EXPANSION = 4
STAGE_DEPTHS = {
    "iresnet50": (3, 4, 6, 3),
    "iresnet101": (3, 4, 23, 3),
    "iresnet152": (3, 8, 36, 3),
    "iresnet200": (3, 24, 36, 3),
}


class IBottleneck(nn.Module):
    """One bottleneck; ``position`` decides where BN and ReLU sit.

    start : conv1..conv3 (+bn3 before the add), shortcut may project
    middle: [bn0] -> relu -> conv1 ..., no BN after the add; the first middle block of a stage has no bn0
            because the start block's output was just normalised
    end   : like middle, then bn3 + relu after the add (closes the stage)
    """

    def __init__(self, in_ch: int, width: int, *, stride: int = 1, position: str = "middle",
                 pre_norm: bool = True, shortcut: nn.Module | None = None):
        super().__init__()
        out_ch = width * EXPANSION
        self.position = position
        self.pre_norm = pre_norm and position != "start"
        if self.pre_norm:
            self.bn0 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        if position in ("start", "end"):
            self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.position == "start":
            y = x
        else:
            y = self.relu(self.bn0(x) if self.pre_norm else x)
        y = self.relu(self.bn1(self.conv1(y)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.conv3(y)
        if self.position == "start":
            y = self.bn3(y)
        y = y + (x if self.shortcut is None else self.shortcut(x))
        if self.position == "end":
            y = self.relu(self.bn3(y))
        return y


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    layers: list[nn.Module] = []
    if stride != 1:
        layers.append(nn.MaxPool2d(3, stride=stride, padding=1))
    if in_ch != out_ch:
        layers += [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
    if not layers:
        return None
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def _stage(in_ch: int, width: int, depth: int, stride: int) -> nn.Sequential:
    out_ch = width * EXPANSION
    blocks = [IBottleneck(in_ch, width, stride=stride, position="start", shortcut=_shortcut(in_ch, out_ch, stride))]
    for i in range(1, depth):
        position = "end" if i == depth - 1 else "middle"
        blocks.append(IBottleneck(out_ch, width, position=position, pre_norm=i > 1))
    return nn.Sequential(*blocks)


class IResNet(nn.Module):
    def __init__(self, depths: tuple[int, int, int, int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        stages, in_ch = [], 64
        for width, depth in zip((64, 128, 256, 512), depths):
            stages.append(_stage(in_ch, width, depth, stride=2))
            in_ch = width * EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def iresnet(name: str, num_classes: int = 1000) -> IResNet:
    return IResNet(STAGE_DEPTHS[name], num_classes)
