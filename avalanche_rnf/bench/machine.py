"""The facts of the machine a result was measured on, as results.json records them."""

from __future__ import annotations

import os
import platform
import time
from typing import Any


def machine_facts(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    import avalanche
    import torch
    import zennit

    facts = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "python": platform.python_version(),
             "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
             "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "avalanche": avalanche.__version__, "zennit": getattr(zennit, "__version__", "?"), "device": device}
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts
