"""Which torch device the kernels run on: `auto` | `cpu` | `cuda[:N]`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from kline_assets.lib.settings import DEFAULT_DEVICE

if TYPE_CHECKING:  # torch takes seconds to import; every Dagster step process pays it
    import torch

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is an error, not a fallback."""
    import torch

    spec = spec.strip().lower()
    if not _SPEC.match(spec):
        raise ValueError(f"device {spec!r} is not one of auto, cpu, cuda, cuda:N (KLINE_DEVICE)")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {spec!r} requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use KLINE_DEVICE=cpu or auto"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s)"
            )
    return torch.device(spec)


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


class TorchDeviceResource(ConfigurableResource):
    device: str = Field(default=DEFAULT_DEVICE, description="auto | cpu | cuda | cuda:N")

    def get(self, override: str | None = None) -> torch.device:
        return resolve_device(override or self.device)
