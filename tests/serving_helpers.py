"""Builders for the multi-adapter tests: stored classification, generation and full entries on a tiny base."""

import torch
from peft import LoraConfig, TaskType, get_peft_model

from lora_playground.adapters import AdapterStore
from lora_helpers import LABELS, metadata_for, perturbed_lora_model

PROMPT = [{"role": "user", "content": "Name a prime number."}]


def perturbed_generation_model(base, *, seed: int = 0, rank: int = 4, target_modules=("q_proj", "v_proj")):
    """Return a causal-LM LoRA model whose adapter weights are moved far enough to change greedy tokens."""
    torch.manual_seed(seed)
    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=rank, lora_alpha=2 * rank, target_modules=list(target_modules))
    model = get_peft_model(base.causal_lm_model(), config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    return model.eval()


def store_classifier(base, name: str, *, seed: int = 0, labels=None, use_dora: bool = False, store=None):
    """Save a perturbed classification LoRA entry; `labels` other than LABELS changes the head size."""
    store = store or AdapterStore()
    metadata = metadata_for(base)
    if labels is None:
        model = perturbed_lora_model(base, seed=seed, use_dora=use_dora)
    else:
        model = _classifier_with_labels(base, labels, seed, use_dora)
        metadata.task = {**metadata.task, "label_names": list(labels)}
    return store.save_lora(name, model, metadata)


def _classifier_with_labels(base, labels, seed: int, use_dora: bool):
    from lora_playground.models import default_target_modules

    torch.manual_seed(seed)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=default_target_modules(base.model_type), use_dora=use_dora
    )
    model = get_peft_model(base.classification_model(len(labels), list(labels)), config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return model.eval()


def store_generator(base, name: str, *, seed: int = 0, rank: int = 4, store=None, target_modules=("q_proj", "v_proj")):
    store = store or AdapterStore()
    model = perturbed_generation_model(base, seed=seed, rank=rank, target_modules=target_modules)
    return store.save_lora(name, model, metadata_for(base, task_type="generation"))


def store_full_classifier(base, name: str, *, seed: int = 0, store=None):
    """Save a full-finetune classification entry whose weights differ from the base."""
    store = store or AdapterStore()
    torch.manual_seed(seed)
    model = base.full_copy("classification", len(LABELS), LABELS)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
    return store.save_full(name, model.eval(), base.tokenizer, metadata_for(base, kind="full"))


def run_extra_cli(argv: list[str]) -> int:
    """Run a `try`, `merge` or `export` command line through its argparse registration."""
    import argparse

    from lora_playground.cli import adapters_extra_cmd

    parser = argparse.ArgumentParser(prog="python -m lora_playground")
    adapters_extra_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)
