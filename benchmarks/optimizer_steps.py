"""Time one AdamW step over a model's LoRA parameters and over all of its parameters, per implementation.

torch's AdamW has three CPU implementations: a Python loop over parameters ("for-loop"), one that
batches the element-wise work over lists of tensors ("foreach"), and a single fused kernel ("fused";
transformers' Trainer picks it by default with torch >= 2.8). This shows how much the choice matters
for LoRA (few trainable numbers) and for full finetuning (every weight).
"""

import time

IMPLEMENTATIONS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def time_optimizer_steps(*, base: str, repeats: int = 5) -> dict:
    """Return {"lora"|"full": {"params": n, implementation: best seconds per step}} for the base model.

    Gradients are filled with random values once; each implementation runs one warm-up step, then the
    best of `repeats` timed steps is kept. The product's default LoRA configuration decides which
    parameters train in the LoRA case.
    """
    import torch

    from lora_playground.models import get_shared_base
    from lora_playground.training import TrainConfig, apply_lora

    shared = get_shared_base(base)
    lora_model = apply_lora(shared.classification_model(2), TrainConfig(), "classification")
    full_model = shared.full_copy("classification", 2)
    result = {}
    for kind, model in (("lora", lora_model), ("full", full_model)):
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        for parameter in parameters:
            parameter.grad = torch.randn_like(parameter)
        timings = {"params": sum(parameter.numel() for parameter in parameters)}
        for name, options in IMPLEMENTATIONS.items():
            optimizer = torch.optim.AdamW(parameters, lr=1e-5, **options)
            optimizer.step()
            best = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                optimizer.step()
                best = min(best, time.perf_counter() - started)
            timings[name] = best
            del optimizer
        result[kind] = timings
    return result
