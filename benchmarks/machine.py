"""A description of the machine a benchmark ran on, stored beside its figures so readers can judge them."""

import os
import platform
from importlib import metadata
from pathlib import Path

import psutil
import torch

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "evaluate", "gradio", "safetensors")
# CPU features that decide which matrix-multiply kernels torch can use.
INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma")


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform.processor() where that file is missing."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """Return which of INTERESTING_FLAGS the CPU reports (empty where /proc/cpuinfo is missing)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in INTERESTING_FLAGS if flag in present]
    except OSError:
        pass
    return []


def library_versions() -> dict[str, str]:
    """Return the installed version of each library in LIBRARIES ("missing" when not installed)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def describe_machine() -> dict:
    """Return the CPU model, cores, torch threads, memory, load and library versions as a JSON-ready dict.

    `load_average_1min` is read when this is called: a value well above the core count means other work
    shared the CPU, so timings are pessimistic and ratios are less reliable.
    """
    memory = psutil.virtual_memory()
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "memory_total_gib": round(memory.total / 2**30, 1),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
    }


def machine_summary(machine: dict) -> str:
    """Return a one-line summary of `describe_machine()` for the top of a printed report."""
    return (
        f"{machine['cpu_model']}, {machine['cpus_usable'] or machine['logical_cpus']} usable CPUs, "
        f"torch {machine['libraries']['torch']} with {machine['torch_threads']} threads "
        f"({machine['torch_cpu_capability']}), {machine['memory_total_gib']} GiB RAM, "
        f"load average {machine['load_average_1min']} at start"
    )
