"""Side-by-side answers: one input, the answers of the base, several stored adapters and full finetunes.

The Try screen and `python -m lora_playground try` call these functions. Every model runs through the
process-wide `AdapterPool` of the base, so LoRA adapters share one base in memory and stay loaded for
the next request (full-finetune entries are cached there too, and count against
LORA_PLAYGROUND_MAX_LOADED_ADAPTERS). Models answer one after another with the same seed, so each answer
equals what that model gives alone, and each latency is that model's own.

Each answer is a dict:

| key | meaning |
| --- | --- |
| name | store entry name, or "base" for the untrained base |
| kind | "base", "lora" or "full" |
| task_type | "classification" or "generation" |
| output | the predicted label name, or the generated reply ("" while a reply has not started) |
| probabilities | {label name: probability} for classification, {} for generation |
| latency_ms | milliseconds of this model's own work (tokenize + forward, or generate); None if it did not run |
| note | why a model gave no answer (for example the untrained base on a classification task), else None |
| done | False while a streamed reply is still growing (streaming only; always True in final answers) |
| first_text_ms | streaming generation only: milliseconds until the first piece of text |
"""

import logging
import threading
import time
from collections.abc import Iterator, Sequence

import torch

from lora_playground import settings
from lora_playground.adapters.mixed_batch import check_generation_options
from lora_playground.adapters.serving import BASE_ADAPTER, AdapterPool, get_pool
from lora_playground.adapters.store import AdapterStore
from lora_playground.errors import AdapterError, ConfigError, DataError
from lora_playground.models import get_shared_base

logger = logging.getLogger(__name__)

BASE_ROW_NAME = "base"
NO_BASE_CLASSIFIER = "The untrained base has no trained classification head, so it gives no label."
NO_ENCODER_GENERATION = "The base is an encoder, so it cannot generate text."

Prompt = str | Sequence[dict]


def answer_side_by_side(
    base_name: str | None,
    names: Sequence[str],
    prompt: Prompt,
    *,
    include_base: bool = False,
    include_full_names: bool | Sequence[str] = False,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    store: AdapterStore | None = None,
    trust_remote_code: bool = False,
) -> list[dict]:
    """Return one answer per model for `prompt` (see the module docstring for the answer fields).

    base_name: the shared base (registry name, folder or Hub id); None takes it from the entries'
        metadata, which must then agree.
    names: store entries, LoRA or full, in the order to show them.
    prompt: a text, or a chat (list of {"role", "content"} messages). Classification models read the
        text (of a chat: its last user message); generation models answer the chat (a text becomes one
        user message).
    include_base: put the untrained base first. It answers generation prompts; on classification it
        gives no label and its answer carries a note saying why.
    include_full_names: True adds the stored full-finetune entries trained on the same data (same data
        fingerprint and base) as a selected LoRA adapter; a list adds those full entries by name.
    max_new_tokens, temperature, top_p, seed: generation settings; temperature 0 decodes greedily, and
        every model samples from a generator seeded with `seed`.

    Raises ConfigError, DataError or AdapterError for bad input, and LimitError when the request needs
    more models than LORA_PLAYGROUND_MAX_LOADED_ADAPTERS allows.
    """
    answers: list[dict] = []
    for answers in stream_side_by_side(
        base_name,
        names,
        prompt,
        include_base=include_base,
        include_full_names=include_full_names,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        store=store,
        trust_remote_code=trust_remote_code,
    ):
        pass
    return answers


def stream_side_by_side(
    base_name: str | None,
    names: Sequence[str],
    prompt: Prompt,
    *,
    include_base: bool = False,
    include_full_names: bool | Sequence[str] = False,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    store: AdapterStore | None = None,
    trust_remote_code: bool = False,
) -> Iterator[list[dict]]:
    """Yield the whole answer list again each time an answer grows, for a live side-by-side view.

    Arguments as `answer_side_by_side`. The first list has every answer pending (`done` False);
    classification answers arrive complete, generation replies grow piece by piece (decoded with
    transformers' TextIteratorStreamer), and the last list is final, with every `done` True. Models
    run one after another. Each yielded list is a fresh copy. Closing the generator early stops the
    running generation at its next token.
    """
    check_generation_options(max_new_tokens, temperature, top_p)
    store = store or AdapterStore()
    pool, plan = _plan(base_name, names, include_base, include_full_names, store, trust_remote_code)
    text, messages = _prompt_forms(prompt)

    answers = [_pending(name, kind, task_type) for name, kind, task_type in plan]
    yield _snapshot(answers)
    for index, (name, kind, task_type) in enumerate(plan):
        answer = answers[index]
        if kind == "base" and (task_type == "classification" or pool.base.spec.architecture != "decoder"):
            answer.update(note=NO_BASE_CLASSIFIER if task_type == "classification" else NO_ENCODER_GENERATION, done=True)
        elif task_type == "classification":
            answer.update(_classify_one(pool, name, text), done=True)
        else:
            model_name = BASE_ADAPTER if kind == "base" else name
            generation = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
            for update in _stream_reply(pool, model_name, messages, generation):
                answer.update(update)
                yield _snapshot(answers)
            continue
        yield _snapshot(answers)


def _plan(base_name, names, include_base, include_full_names, store: AdapterStore, trust_remote_code: bool):
    """Return the pool and the (name, kind, task type) of every model to run, with LoRA and full entries loaded."""
    names = list(dict.fromkeys(names))
    if not names and not include_base:
        raise ConfigError("No models are selected.", "Name at least one stored adapter, or include the base.")
    entries = [store.get(name) for name in names]

    if base_name is None:
        recorded = sorted({entry.metadata.base_model.name for entry in entries})
        if len(recorded) != 1:
            raise AdapterError(
                f"The selected entries were trained on different bases: {', '.join(recorded)}."
                if recorded
                else "No base model was given and no adapter is selected to take it from.",
                "Pass the base model name, and select adapters of that base only.",
            )
        base_name = recorded[0]
    base = get_shared_base(base_name, trust_remote_code=trust_remote_code)

    entries += [store.get(name) for name in _full_names(include_full_names, entries, base, store) if name not in names]
    plan = []
    if include_base:
        generation = any(entry.metadata.task_type == "generation" for entry in entries) or not entries
        plan.append((BASE_ROW_NAME, "base", "generation" if generation else "classification"))
    plan += [(entry.name, entry.metadata.kind, entry.metadata.task_type) for entry in entries]

    pool = get_pool(base, store)
    pool.ensure_loaded([entry.name for entry in entries], evict=True)
    return pool, plan


def _full_names(include_full_names, entries, base, store: AdapterStore) -> list[str]:
    if include_full_names is False or include_full_names is None:
        return []
    if include_full_names is True:
        fingerprints = {
            entry.metadata.data_fingerprint
            for entry in entries
            if entry.metadata.kind == "lora" and entry.metadata.data_fingerprint
        }
        return [
            entry.name
            for entry in store.list()
            if entry.ok
            and entry.metadata.kind == "full"
            and entry.metadata.data_fingerprint in fingerprints
            and entry.metadata.base_model.fingerprint == base.fingerprint
        ]
    names = list(include_full_names)
    not_full = [name for name in names if store.get(name).metadata.kind != "full"]
    if not_full:
        raise ConfigError(
            f"include_full_names lists {', '.join(not_full)}, which are not full-finetune entries.",
            "List full entries there, and put LoRA adapters in names.",
        )
    return names


def _prompt_forms(prompt: Prompt) -> tuple[str, list[dict]]:
    """Return (text for classifiers, chat for generators) of a text or chat prompt."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise DataError("The input text is empty.", "Type a text to send to the models.")
        return prompt, [{"role": "user", "content": prompt}]
    messages = [dict(message) for message in prompt]
    user_texts = [message.get("content", "") for message in messages if message.get("role") == "user"]
    if not user_texts or not str(user_texts[-1]).strip():
        raise DataError("The chat has no user message with text.", "End the chat with a user message.")
    return str(user_texts[-1]), messages


def _pending(name: str, kind: str, task_type: str) -> dict:
    return {
        "name": name,
        "kind": kind,
        "task_type": task_type,
        "output": "",
        "probabilities": {},
        "latency_ms": None,
        "note": None,
        "done": False,
    }


def _snapshot(answers: list[dict]) -> list[dict]:
    return [{**answer, "probabilities": dict(answer["probabilities"])} for answer in answers]


def _classify_one(pool: AdapterPool, name: str, text: str) -> dict:
    from lora_playground.evaluation.classification import predict_classification

    with pool.use(name) as model:
        info = pool.info(name)
        max_length = min(info.max_length, settings.limits().max_sequence_length)
        predictions, probabilities, latency = predict_classification(
            model, pool.base.tokenizer, [text], batch_size=1, max_length=max_length
        )
    label_names = info.label_names
    return {
        "output": label_names[int(predictions[0])],
        "probabilities": {label: float(value) for label, value in zip(label_names, probabilities[0])},
        "latency_ms": latency.wall_time_s * 1000.0,
    }


class _StopOnEvent:
    """A generation stopping criterion that ends every row once `event` is set (the reader went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _stream_reply(pool: AdapterPool, name: str, messages: list[dict], generation: dict) -> Iterator[dict]:
    """Yield answer updates while `name` (an entry or BASE_ADAPTER) generates a reply; the last one is final.

    Generation runs in a worker thread that holds the pool lock; this generator reads the decoded text
    from a TextIteratorStreamer. The final reply is decoded from all new tokens at once and stripped,
    exactly as `generate_responses` does, so it equals the non-streamed reply.
    """
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    from lora_playground.evaluation.generation import _generation_config, _rng_devices
    from lora_playground.evaluation.prompting import render_prompt

    tokenizer = pool.base.tokenizer
    prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    prompt_ids = prompt_ids[-settings.limits().max_sequence_length :]
    inputs = {
        "input_ids": torch.tensor([prompt_ids]),
        "attention_mask": torch.ones((1, len(prompt_ids)), dtype=torch.long),
    }
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stop = threading.Event()
    outcome: dict = {}

    def generate() -> None:
        try:
            with pool.use(name) as model:
                if name != BASE_ADAPTER and pool.info(name).task_type != "generation":
                    raise ConfigError(f"{name!r} is a classification model, so it cannot generate text.")
                config = _generation_config(
                    model, tokenizer, generation["max_new_tokens"], generation["temperature"], generation["top_p"]
                )
                device = next(model.parameters()).device
                model_inputs = {key: value.to(device) for key, value in inputs.items()}
                with torch.random.fork_rng(devices=_rng_devices(device)), torch.inference_mode():
                    torch.manual_seed(generation["seed"])
                    outcome["started"] = time.perf_counter()
                    output = model.generate(
                        **model_inputs,
                        generation_config=config,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                    )
                outcome["seconds"] = time.perf_counter() - outcome["started"]
                outcome["new_tokens"] = output[0, len(prompt_ids) :].tolist()
        except BaseException as error:  # noqa: BLE001 - the reading thread re-raises it; ending the stream unblocks it
            outcome["error"] = error
            streamer.end()

    worker = threading.Thread(target=generate, name=f"generate-{name}", daemon=True)
    worker.start()
    try:
        text = ""
        first_text_ms = None
        for piece in streamer:
            if not piece:
                continue
            text += piece
            if first_text_ms is None and "started" in outcome:
                first_text_ms = (time.perf_counter() - outcome["started"]) * 1000.0
            yield {"output": text, "first_text_ms": first_text_ms}
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        reply = tokenizer.decode(outcome["new_tokens"], skip_special_tokens=True).strip()
        yield {"output": reply, "latency_ms": outcome["seconds"] * 1000.0, "first_text_ms": first_text_ms, "done": True}
    finally:
        # A reader that stops early (closed generator) ends the generation at its next token.
        stop.set()
