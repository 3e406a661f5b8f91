"""Training on the tiny random-weight models: LoRA and full setup, masking, packing, stopping, costs."""

import os
import random
import tempfile
import threading

import datasets
import numpy as np
import pytest
import torch

from lora_playground.errors import CancelledError, ConfigError, ModelError
from lora_playground.evaluation.prompting import IGNORE_INDEX, render_conversation
from lora_playground.models import get_shared_base
from lora_playground.tasks.task import Task, TaskData
from lora_playground.training import TrainConfig, apply_lora, train
from lora_playground.training.collate import CausalLMCollator, collator_for
from lora_playground.training.cost import measure_peak_rss
from lora_playground.training.full import prepare_full_finetune
from lora_playground.training.tokenize import (
    TOKENIZATION_CACHE,
    pack_chats,
    tokenize_classification,
    tokenize_generation,
)

POSITIVE_WORDS = ["good", "great", "fine", "nice"]
NEGATIVE_WORDS = ["bad", "awful", "poor", "sad"]


@pytest.fixture
def bert_base(tiny_bert_dir):
    return get_shared_base(str(tiny_bert_dir))


@pytest.fixture
def llama_base(tiny_llama_dir):
    return get_shared_base(str(tiny_llama_dir))


@pytest.fixture(autouse=True)
def fresh_tokenization_cache():
    TOKENIZATION_CACHE.clear()
    yield
    TOKENIZATION_CACHE.clear()


def sentiment_rows(count: int, seed: int) -> datasets.Dataset:
    """Rows whose label is given away by every word: positive words -> 1, negative words -> 0."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        label = rng.randint(0, 1)
        words = POSITIVE_WORDS if label else NEGATIVE_WORDS
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(2, 8))))
        labels.append(label)
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


def sentiment_task(train_rows: int = 128, validation_rows: int = 32) -> TaskData:
    splits = datasets.DatasetDict(train=sentiment_rows(train_rows, 1), validation=sentiment_rows(validation_rows, 2))
    task = Task(name="toy-sentiment", type="classification", label_names=["negative", "positive"])
    return TaskData(task=task, splits=splits, fingerprint=f"toy-sentiment-{train_rows}-{validation_rows}")


def chat(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def echo_chats(count: int, seed: int) -> datasets.Dataset:
    """Chats whose reply repeats a colour named in the question."""
    rng = random.Random(seed)
    colours = ["red", "green", "blue"]
    rows = []
    for _ in range(count):
        colour = rng.choice(colours)
        rows.append(chat(f"Repeat the colour {colour}, please." + " Thanks." * rng.randint(0, 3), colour))
    return datasets.Dataset.from_dict({"messages": rows})


def echo_task(train_rows: int = 48, validation_rows: int = 8) -> TaskData:
    splits = datasets.DatasetDict(train=echo_chats(train_rows, 1), validation=echo_chats(validation_rows, 2))
    return TaskData(task=Task(name="toy-echo", type="generation"), splits=splits, fingerprint=f"toy-echo-{train_rows}")


def logged_losses(run) -> list[float]:
    return [entry["loss"] for entry in run.history if "loss" in entry]


def trainable_names(model) -> list[str]:
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


# LoRA and full-finetune setup


def test_lora_trains_only_adapter_and_head(bert_base):
    model = bert_base.classification_model(2)
    peft_model = apply_lora(model, TrainConfig(rank=4), "classification")
    names = trainable_names(peft_model)
    assert names
    for name in names:
        assert "lora_" in name or "modules_to_save" in name, name
    assert any("modules_to_save" in name and "classifier" in name for name in names)
    assert "classifier" in peft_model.peft_config["default"].modules_to_save
    assert sorted(peft_model.peft_config["default"].target_modules) == ["query", "value"]


def test_lora_adapter_name_and_options(llama_base):
    config = TrainConfig(rank=4, alpha=8, target_modules="all-linear", use_rslora=True, use_dora=True)
    peft_model = apply_lora(llama_base.causal_lm_model(), config, "generation", adapter_name="colours")
    lora_config = peft_model.peft_config["colours"]
    assert lora_config.use_rslora is True
    assert lora_config.use_dora is True
    assert lora_config.r == 4
    targets = {name.rsplit(".", 1)[-1] for name in lora_config.target_modules}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert any("lora_magnitude_vector" in name for name in trainable_names(peft_model))


def test_lora_unknown_target_lists_linear_layers(bert_base):
    model = bert_base.classification_model(2)
    with pytest.raises(ModelError) as caught:
        apply_lora(model, TrainConfig(target_modules=["q_proj"]), "classification")
    message = str(caught.value)
    assert "q_proj" in message
    for layer in ("query", "key", "value", "dense"):
        assert layer in message


def test_full_finetune_trains_everything(bert_base):
    model = prepare_full_finetune(bert_base.full_copy("classification", 2), TrainConfig(method="full"))
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_full_finetune_last_block_and_head(bert_base):
    config = TrainConfig(method="full", last_n_blocks=1)
    model = prepare_full_finetune(bert_base.full_copy("classification", 2), config)
    names = trainable_names(model)
    assert names
    for name in names:
        assert name.startswith(("bert.encoder.layer.1.", "bert.pooler.", "classifier.")), name
    assert any(name.startswith("classifier.") for name in names)
    assert not any(name.startswith("bert.embeddings.") for name in names)


def test_full_finetune_too_many_blocks(llama_base):
    config = TrainConfig(method="full", last_n_blocks=3)
    with pytest.raises(ConfigError, match="last_n_blocks=3 exceeds the 2"):
        prepare_full_finetune(llama_base.full_copy("causal_lm"), config)


# Tokenization, masking and packing


def test_classification_truncation_is_counted(bert_base):
    rows = datasets.Dataset.from_dict({"text": ["short", "word " * 40, "two words"], "label": [0, 1, 0]})
    tokenized = tokenize_classification(rows, bert_base.tokenizer, max_length=8)
    assert tokenized.truncated == 1
    assert tokenized.lengths[1] == 8
    assert max(tokenized.lengths) == 8
    assert tokenized.dataset[1]["input_ids"][-1] == bert_base.tokenizer.sep_token_id
    assert "truncated 1 of 3 train rows" in tokenized.notes[0]


def test_classification_batches_pad_to_longest(bert_base):
    rows = datasets.Dataset.from_dict({"text": ["a", "a b c d e f"], "label": [0, 1]})
    tokenized = tokenize_classification(rows, bert_base.tokenizer, max_length=64)
    features = [{key: row[key] for key in ("input_ids", "attention_mask", "labels")} for row in tokenized.dataset]
    batch = collator_for("classification", bert_base.tokenizer)(features)
    assert batch["input_ids"].shape == (2, max(tokenized.lengths))
    assert batch["attention_mask"][0].sum().item() == tokenized.lengths[0]


def test_generation_labels_mask_prompt_and_padding(llama_base):
    tokenizer = llama_base.tokenizer
    rows = datasets.Dataset.from_dict({"messages": [chat("Hi", "Hello there"), chat("Name a colour, please.", "Blue")]})
    tokenized = tokenize_generation(rows, tokenizer, max_length=128)
    features = [{"input_ids": row["input_ids"], "labels": row["labels"]} for row in tokenized.dataset]
    batch = collator_for("generation", tokenizer)(features)

    for index, messages in enumerate(rows["messages"]):
        prompt, reply = render_conversation(tokenizer, messages)
        prompt_length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        length = prompt_length + len(reply_ids)
        labels = batch["labels"][index].tolist()
        assert labels[:prompt_length] == [IGNORE_INDEX] * prompt_length
        assert labels[prompt_length:length] == reply_ids
        assert labels[length:] == [IGNORE_INDEX] * (batch["labels"].shape[1] - length)
        assert batch["input_ids"][index, prompt_length:length].tolist() == reply_ids
        assert batch["attention_mask"][index].tolist() == [1] * length + [0] * (batch["labels"].shape[1] - length)
    # The reply ends with the end-of-turn token, which equals the pad token here and must stay labelled.
    assert tokenizer.pad_token_id in reply_ids


def test_generation_drops_chats_without_reply_room(llama_base):
    rows = datasets.Dataset.from_dict({"messages": [chat("long question " * 30, "yes"), chat("Hi", "Hello")]})
    tokenized = tokenize_generation(rows, llama_base.tokenizer, max_length=40)
    assert tokenized.dropped == 1
    assert len(tokenized.dataset) == 1
    assert any("dropped 1 of 2 train chats" in note for note in tokenized.notes)


def test_packing_keeps_chats_separate(llama_base):
    tokenizer = llama_base.tokenizer
    rows = echo_chats(6, seed=3)
    tokenized = tokenize_generation(rows, tokenizer, max_length=128)
    packed = pack_chats(tokenized, max_length=128)
    assert len(packed.dataset) < len(tokenized.dataset)
    assert max(packed.lengths) <= 128
    assert sum(packed.lengths) == sum(tokenized.lengths)

    model = llama_base.causal_lm_model()
    collate = CausalLMCollator(tokenizer.pad_token_id)
    packed_batch = collate([dict(row) for row in packed.dataset.select_columns(["input_ids", "labels", "position_ids"])])
    assert "attention_mask" not in packed_batch
    with torch.no_grad():
        # use_cache=False as in training: transformers looks for packed rows only when no cache is built.
        packed_logits = model(
            input_ids=packed_batch["input_ids"], position_ids=packed_batch["position_ids"], use_cache=False
        ).logits

    # Every chat's logits inside the packed rows equal those of the chat run alone.
    chats = iter(zip(tokenized.dataset["input_ids"], tokenized.dataset["labels"]))
    for row_index, row in enumerate(packed.dataset):
        offset = 0
        while offset < len(row["input_ids"]):
            input_ids, labels = next(chats)
            end = offset + len(input_ids)
            assert row["input_ids"][offset:end] == input_ids
            assert row["position_ids"][offset:end] == list(range(len(input_ids)))
            assert row["labels"][offset] == IGNORE_INDEX
            assert row["labels"][offset + 1 : end] == labels[1:]
            with torch.no_grad():
                alone = model(input_ids=torch.tensor([input_ids]), use_cache=False).logits[0]
            torch.testing.assert_close(packed_logits[row_index, offset:end], alone, atol=1e-4, rtol=1e-4)
            offset = end


# Training runs


def test_lora_bert_learns_toy_task(bert_base):
    config = TrainConfig(epochs=5, batch_size=16, learning_rate=2e-2, seed=1)
    run = train(bert_base, sentiment_task(), config)
    losses = logged_losses(run)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2
    assert run.val_metrics["accuracy"] >= 0.8
    assert run.config is config
    assert run.base_fingerprint == bert_base.fingerprint
    assert run.data_fingerprint == "toy-sentiment-128-32"
    assert not run.model.training


def test_lora_llama_classification_learns(llama_base):
    config = TrainConfig(epochs=5, batch_size=16, learning_rate=2e-2, seed=1)
    run = train(llama_base, sentiment_task(), config)
    losses = logged_losses(run)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert run.val_metrics["accuracy"] >= 0.7


def test_lora_llama_generation_loss_falls(llama_base):
    # The tiny model's frozen tied embedding bounds how peaked its logits can get, so the loss can fall
    # only a little below ln(vocabulary size) = 10.8; a drop of 0.1 nats is well above step noise.
    config = TrainConfig(epochs=3, batch_size=8, learning_rate=5e-2, target_modules="all-linear", seed=1)
    run = train(llama_base, echo_task(), config)
    losses = logged_losses(run)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1
    assert run.val_metrics["loss"] < losses[0]
    assert "accuracy" not in run.val_metrics


def test_packed_generation_trains(llama_base):
    config = TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-2, packing=True, max_length=128)
    run = train(llama_base, echo_task(), config)
    assert any(note.startswith("packed 48 chats into") for note in run.notes)
    assert all(np.isfinite(logged_losses(run)))
    assert run.cost.train_tokens > 0


def test_full_run_trains_all_weights(bert_base):
    config = TrainConfig(method="full", epochs=2, batch_size=16, learning_rate=1e-3)
    run = train(bert_base, sentiment_task(), config)
    assert run.cost.trainable_params == run.cost.total_params
    assert all(parameter.requires_grad for parameter in run.model.parameters())


def test_full_generation_last_block(llama_base):
    config = TrainConfig(method="full", last_n_blocks=1, max_steps=2, batch_size=8, learning_rate=1e-3)
    run = train(llama_base, echo_task(), config)
    names = trainable_names(run.model)
    assert "model.norm.weight" in names
    assert any(name.startswith("model.layers.1.") for name in names)
    assert not any(name.startswith("model.layers.0.") for name in names)
    # The head is tied to the input embedding, so it stays frozen with it.
    assert "model.embed_tokens.weight" not in names
    assert run.model.lm_head.weight is run.model.model.embed_tokens.weight
    assert run.cost.trainable_params < run.cost.total_params
    assert run.model.config.use_cache is True


def test_same_seed_repeats_losses(bert_base):
    config = TrainConfig(max_steps=6, batch_size=8, group_by_length=True, seed=7)
    first = logged_losses(train(bert_base, sentiment_task(), config))
    second = logged_losses(train(bert_base, sentiment_task(), config))
    other_seed = logged_losses(train(bert_base, sentiment_task(), TrainConfig(max_steps=6, batch_size=8, seed=8)))
    assert len(first) == 6
    assert first == second
    assert first != other_seed


def test_early_stopping_restores_best(bert_base):
    # A tiny learning rate leaves the accuracy flat, so the first evaluation stays the best one.
    config = TrainConfig(
        max_steps=40, batch_size=8, learning_rate=1e-4, eval_every_steps=2, early_stopping_patience=2, seed=3
    )
    task = sentiment_task()
    run = train(bert_base, task, config)
    evaluations = [entry for entry in run.history if "eval_loss" in entry]
    assert [entry["step"] for entry in evaluations][:3] == [2, 4, 6]
    assert evaluations[-1]["step"] < 40
    assert any(note.startswith("early stopping after step") for note in run.notes)

    best = evaluations[0]
    assert run.val_metrics["loss"] == pytest.approx(best["eval_loss"])
    assert best["eval_loss"] != pytest.approx(evaluations[-1]["eval_loss"], abs=1e-7)

    # The returned model is the restored best one: its validation loss matches the best evaluation.
    tokenized = tokenize_classification(task.splits["validation"], bert_base.tokenizer, 128, "validation")
    features = [{key: row[key] for key in ("input_ids", "token_type_ids", "attention_mask", "labels")} for row in tokenized.dataset]
    batch = collator_for("classification", bert_base.tokenizer)(features)
    with torch.no_grad():
        loss = run.model(**batch).loss.item()
    assert loss == pytest.approx(best["eval_loss"], abs=1e-5)


def test_cancel_event_stops_training(bert_base):
    cancel = threading.Event()
    steps = []

    def on_progress(update):
        if update["event"] == "step":
            steps.append(update["step"])
            if update["step"] == 2:
                cancel.set()

    with pytest.raises(CancelledError, match="cancelled at step 2"):
        train(bert_base, sentiment_task(), TrainConfig(max_steps=50, batch_size=8), progress=on_progress, cancel_event=cancel)
    assert steps == [1, 2]


def test_progress_reports_fields(bert_base):
    updates = []
    train(bert_base, sentiment_task(), TrainConfig(max_steps=4, batch_size=8, eval_every_steps=2), progress=updates.append)
    steps = [update for update in updates if update["event"] == "step"]
    assert [update["step"] for update in steps] == [1, 2, 3, 4]
    last = steps[-1]
    assert last["max_steps"] == 4
    assert last["eta_s"] == 0
    assert last["elapsed_s"] > 0
    assert last["tokens_per_s"] > 0
    assert last["loss"] > 0
    evaluations = [update for update in updates if update["event"] == "evaluate"]
    assert len(evaluations) == 2
    assert 0 <= evaluations[0]["eval"]["accuracy"] <= 1


def test_cost_report_lora_versus_full(bert_base):
    task = sentiment_task()
    lora = train(bert_base, task, TrainConfig(max_steps=4, batch_size=8)).cost
    full = train(bert_base, task, TrainConfig(method="full", max_steps=4, batch_size=8)).cost
    for cost in (lora, full):
        assert cost.trainable_params > 0
        assert cost.total_params >= cost.trainable_params
        assert cost.stored_bytes > 0
        assert cost.peak_memory_bytes >= 0
        assert cost.train_wall_time_s > 0
        assert cost.train_tokens > 0
        assert cost.train_tokens_per_s > 0
        assert cost.train_flops_estimate > 0
    assert lora.trainable_params * 100 < full.trainable_params
    assert lora.stored_bytes * 100 < full.stored_bytes
    # Same data order and schedule: both runs saw exactly the same tokens.
    assert lora.train_tokens == full.train_tokens


def test_bf16_autocast_trains(bert_base):
    run = train(bert_base, sentiment_task(), TrainConfig(max_steps=4, batch_size=8, bf16=True))
    assert all(np.isfinite(logged_losses(run)))


def test_training_writes_no_files(bert_base, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    scratch = tmp_path / "scratch"
    work.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    config = TrainConfig(max_steps=6, batch_size=8, eval_every_steps=2, early_stopping_patience=1, learning_rate=1e-4)
    train(bert_base, sentiment_task(), config)
    assert os.listdir(work) == []
    assert os.listdir(scratch) == []


def test_packing_rejected_for_classification(bert_base):
    with pytest.raises(ConfigError, match="packing applies to generation tasks only"):
        train(bert_base, sentiment_task(), TrainConfig(packing=True))


def test_generation_rejected_on_encoder(bert_base):
    with pytest.raises(ConfigError, match="generation needs a decoder base"):
        train(bert_base, echo_task(), TrainConfig())


def test_early_stopping_needs_validation(bert_base):
    task = sentiment_task()
    task.splits.pop("validation")
    with pytest.raises(ConfigError, match="early_stopping_patience needs a validation split"):
        train(bert_base, task, TrainConfig(early_stopping_patience=2))


def test_peak_rss_sees_allocation():
    with measure_peak_rss() as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB of float32
        block += 1
        threading.Event().wait(0.1)
        del block
    assert memory.peak_bytes >= 48 * 2**20
