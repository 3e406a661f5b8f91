"""Offline metrics, predictions and generations on tiny models, and comparison reports."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from lora_playground.errors import ConfigError, DataError
from lora_playground.evaluation import (
    RunResult,
    classification_metrics,
    compare_runs,
    compute_metric,
    encode_chat,
    generate_responses,
    generation_metrics,
    load_metric,
    predict_classification,
    render_conversation,
    render_prompt,
    response_perplexity,
)
from lora_playground.evaluation.metrics import METRIC_NAMES
from lora_playground.evaluation.metrics.text_scores import longest_common_subsequence, normalize_answer
from lora_playground.evaluation.prompting import IGNORE_INDEX

REPO_ROOT = Path(__file__).resolve().parents[1]

# Hand-checked example: 3 classes, 8 examples.
#   class 0: tp 1, fp 2, fn 1 -> precision 1/3, recall 1/2, F1 0.4
#   class 1: tp 2, fp 0, fn 1 -> precision 1,   recall 2/3, F1 0.8
#   class 2: tp 2, fp 1, fn 1 -> precision 2/3, recall 2/3, F1 2/3
PREDICTIONS = [0, 0, 1, 1, 2, 2, 2, 0]
REFERENCES = [0, 1, 1, 1, 2, 0, 2, 2]


# ---------------------------------------------------------------- metric modules


def test_metrics_load_offline_in_fresh_process(tmp_path):
    script = (
        "from lora_playground.evaluation.metrics import METRIC_NAMES, compute_metric, load_metric\n"
        "for name in METRIC_NAMES:\n"
        "    load_metric(name)\n"
        "print(compute_metric('accuracy', [1, 0, 1, 1], [1, 1, 1, 1])['accuracy'])\n"
    )
    environment = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),  # an empty module cache: nothing copied earlier helps
        "PYTHONPATH": str(REPO_ROOT),
    }
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "0.75"
    assert any((tmp_path / "modules").rglob("accuracy.py"))


def test_load_metric_cached_per_name():
    assert load_metric("f1") is load_metric("f1")
    assert load_metric("f1") is not load_metric("recall")


def test_load_metric_unknown_name():
    with pytest.raises(ConfigError, match="Unknown metric 'bleu'"):
        load_metric("bleu")


def test_every_metric_folder_follows_evaluate_layout():
    from lora_playground.evaluation.metrics import METRICS_DIR

    for name in METRIC_NAMES:
        assert (METRICS_DIR / name / f"{name}.py").is_file()


@pytest.mark.parametrize("name, class_name", [("precision", "Precision"), ("f1", "F1"), ("rouge_l", "RougeL")])
def test_metric_loads_its_own_class(name, class_name):
    metric = load_metric(name)
    assert type(metric).__name__ == class_name
    assert metric.description == sys.modules[type(metric).__module__].__doc__
    assert f"    {name} (float" in metric.inputs_description


def test_accuracy_hand_computed():
    assert compute_metric("accuracy", PREDICTIONS, REFERENCES)["accuracy"] == pytest.approx(5 / 8)


def test_per_class_scores_hand_computed():
    per_class = {"average": None, "labels": [0, 1, 2]}
    assert compute_metric("precision", PREDICTIONS, REFERENCES, **per_class)["precision"] == pytest.approx(
        [1 / 3, 1.0, 2 / 3]
    )
    assert compute_metric("recall", PREDICTIONS, REFERENCES, **per_class)["recall"] == pytest.approx(
        [1 / 2, 2 / 3, 2 / 3]
    )
    assert compute_metric("f1", PREDICTIONS, REFERENCES, **per_class)["f1"] == pytest.approx([0.4, 0.8, 2 / 3])


def test_averaged_scores_hand_computed():
    assert compute_metric("f1", PREDICTIONS, REFERENCES)["f1"] == pytest.approx((0.4 + 0.8 + 2 / 3) / 3)
    assert compute_metric("precision", PREDICTIONS, REFERENCES)["precision"] == pytest.approx(2 / 3)
    assert compute_metric("recall", PREDICTIONS, REFERENCES)["recall"] == pytest.approx(11 / 18)
    # Supports are 2, 3 and 3.
    assert compute_metric("f1", PREDICTIONS, REFERENCES, average="weighted")["f1"] == pytest.approx((0.8 + 2.4 + 2) / 8)
    assert compute_metric("f1", PREDICTIONS, REFERENCES, average="micro")["f1"] == pytest.approx(5 / 8)


def test_absent_class_lowers_macro_f1():
    with_absent = compute_metric("f1", PREDICTIONS, REFERENCES, labels=[0, 1, 2, 3], average=None)["f1"]
    assert with_absent[3] == 0.0
    macro = compute_metric("f1", PREDICTIONS, REFERENCES, labels=[0, 1, 2, 3])["f1"]
    assert macro == pytest.approx((0.4 + 0.8 + 2 / 3) / 4)


def test_confusion_matrix_hand_computed():
    matrix = compute_metric("confusion_matrix", PREDICTIONS, REFERENCES)["confusion_matrix"]
    assert matrix == [[1, 0, 1], [1, 2, 0], [1, 0, 2]]
    padded = compute_metric("confusion_matrix", [0, 1], [0, 0], labels=[0, 1, 2])["confusion_matrix"]
    assert padded == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_classification_metric_rejects_bad_input():
    with pytest.raises(DataError, match="Unknown average"):
        compute_metric("f1", [0], [0], average="samples")
    with pytest.raises(DataError, match="no examples"):
        compute_metric("accuracy", [], [])


@pytest.mark.parametrize(
    "prediction, reference, expected",
    [
        ("the cat sat on the mat", "the cat lay on the mat", 5 / 6),
        # LCS "the gunman": precision 2/4, recall 2/6.
        ("police killed the gunman", "the gunman was killed by police", 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3)),
        ("The Cat.", "the cat", 1.0),
        ("", "", 1.0),
        ("", "something", 0.0),
        ("completely different", "words here", 0.0),
    ],
)
def test_rouge_l_hand_computed(prediction, reference, expected):
    assert compute_metric("rouge_l", [prediction], [reference])["rouge_l"] == pytest.approx(expected)


def test_longest_common_subsequence():
    assert longest_common_subsequence(list("ABCBDAB"), list("BDCABA")) == 4
    assert longest_common_subsequence([], ["x"]) == 0


@pytest.mark.parametrize(
    "prediction, reference, expected",
    [
        ("The Cat!", "cat", 1.0),
        ("  an  apple ", "Apple.", 1.0),
        ("cat", "cats", 0.0),
        ("Paris, France", "Paris France", 1.0),
    ],
)
def test_exact_match_normalizes(prediction, reference, expected):
    assert compute_metric("exact_match", [prediction], [reference])["exact_match"] == expected


@pytest.mark.parametrize(
    "prediction, reference, expected",
    [
        # Normalized: [quick, brown, fox] vs [quick, fox, jumps]: overlap 2, precision 2/3, recall 2/3.
        ("the quick brown fox", "a quick fox jumps", 2 / 3),
        # Overlap counts each shared token at most as often as it occurs in both: 1 of 3 vs 1 of 1.
        ("fox fox fox", "fox", 0.5),
        ("", "", 1.0),
        ("the", "fox", 0.0),
    ],
)
def test_token_f1_hand_computed(prediction, reference, expected):
    assert compute_metric("token_f1", [prediction], [reference])["token_f1"] == pytest.approx(expected)


def test_normalize_answer_handles_unicode_punctuation():
    assert normalize_answer("«Bonjour» — the World…") == "bonjour world"


def test_text_metric_per_example_scores():
    result = compute_metric("token_f1", ["fox fox fox", "cat"], ["fox", "cat"], return_per_example=True)
    assert result["token_f1_per_example"] == pytest.approx([0.5, 1.0])
    assert result["token_f1"] == pytest.approx(0.75)


def test_generation_metrics_mean_over_examples():
    metrics = generation_metrics(["The cat.", "a dog barked"], ["the cat", "the dog slept"])
    # Example 2: ROUGE-L tokens [a, dog, barked] vs [the, dog, slept], LCS 1 -> 1/3; normalized tokens
    # [dog, barked] vs [dog, slept] -> token F1 1/2.
    assert metrics["rouge_l"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert metrics["exact_match"] == pytest.approx(0.5)
    assert metrics["token_f1"] == pytest.approx((1.0 + 0.5) / 2)
    assert metrics["n"] == 2


def test_generation_metrics_rejects_mismatch():
    with pytest.raises(DataError, match="2 generated replies for 1 references"):
        generation_metrics(["a", "b"], ["a"])


def test_classification_metrics_report():
    metrics = classification_metrics(PREDICTIONS, REFERENCES, ["red", "green", "blue"])
    assert metrics["accuracy"] == pytest.approx(5 / 8)
    assert metrics["macro_f1"] == pytest.approx((0.4 + 0.8 + 2 / 3) / 3)
    assert metrics["per_class"]["red"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    assert metrics["per_class"]["blue"]["support"] == 3
    assert metrics["confusion_matrix"] == [[1, 0, 1], [1, 2, 0], [1, 0, 2]]
    assert metrics["n"] == 8


def test_classification_metrics_rejects_unknown_index():
    with pytest.raises(DataError, match="class index 2, but there are only 2 label names"):
        classification_metrics([0, 2], [0, 1], ["no", "yes"])
    with pytest.raises(DataError, match="duplicates"):
        classification_metrics([0, 1], [0, 1], ["same", "same"])


# ---------------------------------------------------------------- classification predictions

TEXTS = ["a short one", "a much longer sentence that needs more padding than the others", "mid length text", "ok"]


@pytest.fixture(scope="module")
def tiny_bert_classifier(tiny_bert_dir):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    return model, AutoTokenizer.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def tiny_llama_classifier(tiny_llama_dir):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama_dir, num_labels=3)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def test_predict_classification_outputs(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    predictions, probabilities, latency = predict_classification(model, tokenizer, TEXTS, batch_size=3)
    assert predictions.shape == (4,)
    assert predictions.dtype == np.int64
    assert probabilities.shape == (4, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(predictions, probabilities.argmax(axis=1))
    assert latency.n_examples == 4
    assert latency.batch_size == 3
    assert latency.wall_time_s > 0
    assert latency.ms_per_example == pytest.approx(1000 * latency.wall_time_s / 4)
    assert latency.to_dict()["inference_examples_per_s"] == pytest.approx(4 / latency.wall_time_s)


def test_predict_classification_matches_manual_forward(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    _, probabilities, _ = predict_classification(model, tokenizer, TEXTS[:1])
    model.eval()
    with torch.no_grad():
        logits = model(**tokenizer(TEXTS[:1], return_tensors="pt")).logits
    np.testing.assert_allclose(probabilities, torch.softmax(logits, -1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("classifier", ["tiny_bert_classifier", "tiny_llama_classifier"])
def test_padding_does_not_change_predictions(classifier, request):
    model, tokenizer = request.getfixturevalue(classifier)
    _, batched, _ = predict_classification(model, tokenizer, TEXTS, batch_size=4)
    _, one_by_one, _ = predict_classification(model, tokenizer, TEXTS, batch_size=1)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_predict_classification_text_pairs(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    _, single, _ = predict_classification(model, tokenizer, ["same first text"] * 2)
    _, paired, _ = predict_classification(model, tokenizer, ["same first text"] * 2, ["second one", "another second"])
    assert not np.allclose(single, paired)
    assert not np.allclose(paired[0], paired[1])


def test_predict_classification_truncates(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    long_text = " ".join(["word"] * 400)
    _, truncated, _ = predict_classification(model, tokenizer, [long_text], max_length=8)
    _, short, _ = predict_classification(model, tokenizer, [" ".join(["word"] * 6)], max_length=8)
    # [CLS] + 6 words + [SEP] is what 8 tokens of the long text keep.
    np.testing.assert_allclose(truncated, short, atol=1e-6)


def test_predict_classification_restores_train_mode(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    model.train()
    predict_classification(model, tokenizer, TEXTS[:2])
    assert model.training
    model.eval()


def test_predict_classification_rejects_bad_input(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    with pytest.raises(DataError, match="1 second texts for 2 texts"):
        predict_classification(model, tokenizer, ["a", "b"], ["c"])
    with pytest.raises(ConfigError, match="batch_size=0"):
        predict_classification(model, tokenizer, ["a"], batch_size=0)


def test_predict_classification_empty_input(tiny_bert_classifier):
    model, tokenizer = tiny_bert_classifier
    predictions, probabilities, latency = predict_classification(model, tokenizer, [])
    assert predictions.shape == (0,)
    assert probabilities.shape == (0, 2)
    assert latency.ms_per_example == 0.0


# ---------------------------------------------------------------- prompts and generation

CHATS = [
    [{"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "Seven."}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What colour is the sky on a clear day, usually?"},
        {"role": "assistant", "content": "Blue, most of the time."},
    ],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, how can I help you today?"}],
]


@pytest.fixture(scope="module")
def tiny_llama_lm(tiny_llama_dir):
    """The tiny Llama with untied output weights: the tied random model only repeats the prompt's last token."""
    config = AutoConfig.from_pretrained(tiny_llama_dir)
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config), AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.fixture()
def plain_tokenizer(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tokenizer.chat_template = None
    return tokenizer


def test_render_prompt_uses_chat_template(tiny_llama_lm):
    _, tokenizer = tiny_llama_lm
    prompt = render_prompt(tokenizer, CHATS[0][:-1])
    assert prompt.endswith("<|im_start|>user\nName a prime number.<|im_end|>\n<|im_start|>assistant\n")


def test_render_prompt_plain_format(plain_tokenizer):
    prompt = render_prompt(plain_tokenizer, CHATS[1][:-1])
    bos = plain_tokenizer.bos_token if plain_tokenizer("x")["input_ids"][0] == plain_tokenizer.bos_token_id else ""
    expected = (
        "### System:\nYou are terse.\n\n### User:\nWhat colour is the sky on a clear day, usually?\n\n### Assistant:\n"
    )
    assert prompt == bos + expected


def test_render_conversation_plain_reply_ends_with_eos(plain_tokenizer):
    prompt, reply = render_conversation(plain_tokenizer, CHATS[0])
    assert prompt.endswith("### Assistant:\n")
    assert reply == "Seven." + plain_tokenizer.eos_token


def test_render_conversation_splits_template_output(tiny_llama_lm):
    _, tokenizer = tiny_llama_lm
    prompt, reply = render_conversation(tokenizer, CHATS[0])
    assert prompt + reply == tokenizer.apply_chat_template(CHATS[0], tokenize=False)
    assert reply == "Seven.<|im_end|>\n"


def test_render_rejects_bad_chats(tiny_llama_lm):
    _, tokenizer = tiny_llama_lm
    with pytest.raises(DataError, match="ends with an assistant message"):
        render_prompt(tokenizer, CHATS[0])
    with pytest.raises(DataError, match="must be the assistant reply"):
        render_conversation(tokenizer, CHATS[0][:-1])
    with pytest.raises(DataError, match="no messages"):
        render_prompt(tokenizer, [])
    with pytest.raises(DataError, match="not a dict with 'role' and 'content'"):
        render_prompt(tokenizer, [{"text": "hi"}])


def test_broken_chat_template_raises_data_error(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(DataError, match="failed to render a chat with roles \\['user'\\]: roles must alternate"):
        render_prompt(tokenizer, CHATS[0][:-1])


def test_encode_chat_masks_prompt(tiny_llama_lm):
    _, tokenizer = tiny_llama_lm
    encoded = encode_chat(tokenizer, CHATS[1], max_length=512)
    prompt, reply = render_conversation(tokenizer, CHATS[1])
    prompt_length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    assert encoded.labels[:prompt_length] == [IGNORE_INDEX] * prompt_length
    assert encoded.labels[prompt_length:] == reply_ids
    assert encoded.input_ids[prompt_length:] == reply_ids
    assert encoded.reply_token_count == len(reply_ids)
    assert tokenizer.decode(encoded.input_ids) == prompt + reply
    assert not encoded.truncated


def test_encode_chat_truncates_end(tiny_llama_lm):
    _, tokenizer = tiny_llama_lm
    full = encode_chat(tokenizer, CHATS[1], max_length=512)
    cut = encode_chat(tokenizer, CHATS[1], max_length=len(full.input_ids) - 2)
    assert cut.truncated
    assert cut.input_ids == full.input_ids[:-2]
    assert cut.reply_token_count == full.reply_token_count - 2


def test_generation_is_deterministic(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    first = generate_responses(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    second = generate_responses(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    assert first == second
    assert len(first) == 3
    assert all(reply for reply in first)
    assert len(set(first)) == 3


def test_greedy_generation_ignores_left_padding(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    batched = generate_responses(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    one_by_one = generate_responses(model, tokenizer, prompts, max_new_tokens=8, batch_size=1)
    assert batched == one_by_one


def test_greedy_generation_matches_manual_argmax(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    prompt_ids = tokenizer(render_prompt(tokenizer, CHATS[0][:-1]), add_special_tokens=False, return_tensors="pt")[
        "input_ids"
    ]
    generated = []
    with torch.no_grad():
        for _ in range(5):
            next_id = int(model(input_ids=prompt_ids).logits[0, -1].argmax())
            if next_id == tokenizer.eos_token_id:
                break
            generated.append(next_id)
            prompt_ids = torch.cat([prompt_ids, torch.tensor([[next_id]])], dim=1)
    expected = tokenizer.decode(generated, skip_special_tokens=True).strip()
    assert generate_responses(model, tokenizer, [CHATS[0][:-1]], max_new_tokens=5) == [expected]


def test_sampling_repeats_with_seed(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    options = {"max_new_tokens": 6, "temperature": 1.5, "top_p": 0.95}
    torch.manual_seed(123)
    expected_next_draw = torch.rand(1)
    torch.manual_seed(123)
    first = generate_responses(model, tokenizer, prompts, seed=1, **options)
    assert torch.rand(1) == expected_next_draw  # the caller's random state is untouched
    assert generate_responses(model, tokenizer, prompts, seed=1, **options) == first
    others = [generate_responses(model, tokenizer, prompts, seed=seed, **options) for seed in (2, 3)]
    assert any(other != first for other in others)


def test_generation_respects_max_new_tokens(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    short = generate_responses(model, tokenizer, prompts, max_new_tokens=3)
    long = generate_responses(model, tokenizer, prompts, max_new_tokens=8)
    for short_reply, long_reply in zip(short, long):
        assert long_reply.startswith(short_reply)
        assert len(long_reply) > len(short_reply)


def test_generation_keeps_prompt_end(tiny_llama_lm, caplog):
    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    with caplog.at_level("WARNING", logger="lora_playground.evaluation.generation"):
        replies = generate_responses(model, tokenizer, prompts, max_new_tokens=4, max_prompt_length=6)
    assert "Kept the last 6 tokens of 3 prompts" in caplog.text
    full = generate_responses(model, tokenizer, prompts, max_new_tokens=4)
    assert replies != full


def test_peft_models_predict_and_generate(tiny_bert_dir, tiny_llama_lm):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    lora_classifier = get_peft_model(
        classifier, LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"])
    )
    predictions, probabilities, _ = predict_classification(
        lora_classifier, AutoTokenizer.from_pretrained(tiny_bert_dir), TEXTS
    )
    assert probabilities.shape == (4, 2)
    np.testing.assert_array_equal(predictions, probabilities.argmax(axis=1))

    model, tokenizer = tiny_llama_lm
    prompts = [chat[:-1] for chat in CHATS]
    base_replies = generate_responses(model, tokenizer, prompts, max_new_tokens=5)
    lora_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"]))
    try:
        # A fresh LoRA adapter starts as a zero update, so it generates exactly what the base model generates.
        assert generate_responses(lora_model, tokenizer, prompts, max_new_tokens=5) == base_replies
    finally:
        lora_model.unload()


def test_generation_rejects_bad_options(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    with pytest.raises(ConfigError, match="temperature=-0.5"):
        generate_responses(model, tokenizer, [CHATS[0][:-1]], temperature=-0.5)
    with pytest.raises(ConfigError, match="top_p=0"):
        generate_responses(model, tokenizer, [CHATS[0][:-1]], top_p=0)


def _reply_nll(model, encoded) -> tuple[float, int]:
    """Sum the negative log-likelihood of the reply tokens one position at a time."""
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=torch.tensor([encoded.input_ids])).logits[0].float(), dim=-1)
    total, count = 0.0, 0
    for position, label in enumerate(encoded.labels):
        if label != IGNORE_INDEX and position > 0:
            total -= float(log_probs[position - 1, label])
            count += 1
    return total, count


def test_perplexity_scores_reply_tokens_only(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    encoded = [encode_chat(tokenizer, chat, max_length=512) for chat in CHATS]
    sums = [_reply_nll(model, chat) for chat in encoded]
    expected = math.exp(sum(total for total, _ in sums) / sum(count for _, count in sums))
    assert response_perplexity(model, tokenizer, CHATS, max_length=512, batch_size=3) == pytest.approx(
        expected, rel=1e-4
    )
    assert response_perplexity(model, tokenizer, CHATS, max_length=512, batch_size=1) == pytest.approx(
        expected, rel=1e-4
    )

    # The model's own loss over every token (prompt included) gives a different number.
    ids = torch.tensor([encoded[0].input_ids])
    with torch.no_grad():
        all_token_loss = model(input_ids=ids, labels=ids).loss.item()
    assert response_perplexity(model, tokenizer, CHATS[:1], max_length=512) != pytest.approx(
        math.exp(all_token_loss), rel=1e-3
    )


def test_perplexity_matches_model_masked_loss(tiny_llama_lm):
    # transformers' causal-LM loss skips IGNORE_INDEX labels, so with the prompt masked it is the reply loss.
    model, tokenizer = tiny_llama_lm
    encoded = encode_chat(tokenizer, CHATS[1], max_length=512)
    ids = torch.tensor([encoded.input_ids])
    masked = torch.tensor([encoded.labels])
    with torch.no_grad():
        masked_loss = model(input_ids=ids, labels=masked).loss.item()
    assert response_perplexity(model, tokenizer, CHATS[1:2], max_length=512) == pytest.approx(
        math.exp(masked_loss), rel=1e-4
    )


def test_perplexity_changes_with_reply(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    other_reply = [CHATS[0][0], {"role": "assistant", "content": "Eleven, or perhaps thirteen."}]
    assert response_perplexity(model, tokenizer, [CHATS[0]]) != pytest.approx(
        response_perplexity(model, tokenizer, [other_reply])
    )


def test_perplexity_needs_reply_tokens(tiny_llama_lm):
    model, tokenizer = tiny_llama_lm
    with pytest.raises(DataError, match="No chat has a reply token within max_length=4"):
        response_perplexity(model, tokenizer, CHATS, max_length=4)


# ---------------------------------------------------------------- comparison reports

LABELS = ["ham", "spam"]


def _classification_runs(n: int = 40):
    examples = [{"text": f"message {index} | with a pipe", "label": index % 2} for index in range(n)]
    references = [example["label"] for example in examples]
    lora_predictions = [label if index % 10 else 1 - label for index, label in enumerate(references)]
    full_predictions = [label if index % 4 else 1 - label for index, label in enumerate(references)]
    lora = RunResult(
        "lora-r8",
        "lora",
        classification_metrics(lora_predictions, references, LABELS),
        lora_predictions,
        cost={
            "trainable_params": 20_000,
            "total_params": 2_000_000,
            "stored_bytes": 100 * 1024,
            "peak_memory_bytes": 300 * 2**20,
            "train_wall_time_s": 42.0,
            "train_tokens_per_s": 2000.0,
        },
    )
    full = RunResult(
        "full",
        "full",
        classification_metrics(full_predictions, references, LABELS),
        full_predictions,
        cost={
            "trainable_params": 2_000_000,
            "total_params": 2_000_000,
            "stored_bytes": 200 * 100 * 1024,
            "peak_memory_bytes": 600 * 2**20,
            "train_wall_time_s": 84.0,
            "train_tokens_per_s": 1000.0,
        },
    )
    return examples, lora, full


def test_compare_classification_json():
    examples, lora, full = _classification_runs()
    report = compare_runs([lora, full], examples, LABELS, "classification", max_disagreements=3)
    data = json.loads(report.to_json())

    assert data["primary_metric"] == "accuracy"
    lora_run = data["runs"][0]
    assert lora_run["interval"]["point"] == pytest.approx(0.9)
    assert lora_run["interval"]["low"] < 0.9 < lora_run["interval"]["high"]
    assert data["best"]["accuracy"] == ["lora-r8"]
    assert data["best"]["stored_bytes"] == ["lora-r8"]
    assert data["best"]["train_tokens_per_s"] == ["lora-r8"]
    assert "total_params" not in data["best"]

    ratios = data["relative_to_full"]
    assert ratios["reference"] == "full"
    assert ratios["ratios"]["lora-r8"]["trainable_params"] == pytest.approx(0.01)
    assert ratios["ratios"]["lora-r8"]["stored_bytes"] == pytest.approx(1 / 200)

    # LoRA errs on examples 0, 10, 20, 30; full on 0, 4, 8, ..., 36: they disagree on 8 + 2 = 10 examples.
    (test,) = data["pairwise"]
    assert (test["a"], test["b"], test["b10"], test["b01"]) == ("lora-r8", "full", 8, 2)
    assert test["method"] == "exact binomial"
    assert test["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert data["disagreements"]["total"] == 10
    assert len(data["disagreements"]["examples"]) == 3
    assert data["disagreements"]["examples"][0] == {
        "index": 4,
        "text": "message 4 | with a pipe",
        "reference": "ham",
        "predictions": {"lora-r8": "ham", "full": "spam"},
    }


def test_compare_classification_markdown():
    examples, lora, full = _classification_runs()
    markdown = compare_runs([lora, full], examples, LABELS, "classification", max_disagreements=3).to_markdown()
    assert "| Accuracy ↑ | **90.00%** | 75.00% |" in markdown
    assert "| Accuracy 95% CI (bootstrap) | [" in markdown
    assert "| Stored size ↓ | **100.0 KiB** | 19.5 MiB |" in markdown
    assert "| Training time ↓ | **42.0 s** | 84.0 s |" in markdown
    assert "| Total parameters | 2.0M | 2.0M |" in markdown
    assert "LoRA `lora-r8` trains 1% of the parameters that `full` trains" in markdown
    assert "its stored files are 1/200 of the full checkpoint's size" in markdown
    assert "| `lora-r8` vs `full` | 8 | 2 | exact binomial |" in markdown
    assert "## Examples where the runs disagree (3 of 10 shown)" in markdown
    assert "message 4 \\| with a pipe" in markdown
    assert "| ham | 20 |" in markdown


def test_compare_writes_both_files(tmp_path):
    examples, lora, full = _classification_runs()
    json_path, markdown_path = compare_runs([lora, full], examples, LABELS, "classification").write(tmp_path / "out")
    assert json.loads(json_path.read_text(encoding="utf-8"))["n_examples"] == 40
    assert markdown_path.read_text(encoding="utf-8").startswith("# Comparison of 2 runs (classification)")


def test_compare_without_full_run_has_no_ratios():
    examples, lora, _ = _classification_runs()
    report = compare_runs([lora], examples, LABELS, "classification")
    assert report.relative_to_full is None
    assert report.pairwise == []
    assert report.best == {}
    assert "Relative to the full finetune" not in report.to_markdown()


def test_compare_rejects_inconsistent_runs():
    examples, lora, full = _classification_runs()
    short = RunResult("short", "lora", {}, [0, 1])
    with pytest.raises(DataError, match="Run 'short' has 2 predictions for 40 test examples"):
        compare_runs([lora, short], examples, LABELS, "classification")
    with pytest.raises(ConfigError, match="appear more than once"):
        compare_runs([lora, lora], examples, LABELS, "classification")
    with pytest.raises(ConfigError, match="kind 'adapter'"):
        compare_runs([RunResult("odd", "adapter", {}, full.predictions)], examples, LABELS, "classification")
    with pytest.raises(DataError, match="predicts class index 5"):
        compare_runs([RunResult("wide", "lora", {}, [5] * 40)], examples, LABELS, "classification")
    with pytest.raises(ConfigError, match="need label_names"):
        compare_runs([lora], examples, None, "classification")


def _generation_runs():
    examples = [
        {
            "messages": [
                {"role": "user", "content": f"Question {index}?"},
                {"role": "assistant", "content": f"The answer is {index}."},
            ]
        }
        for index in range(6)
    ]
    base = RunResult(
        "base",
        "base",
        {"rouge_l": 0.1, "token_f1": 0.1, "exact_match": 0.0, "perplexity": 80.0},
        ["I do not know."] * 6,
    )
    lora_replies = [f"The answer is {index}." if index % 2 else "Answer unknown" for index in range(6)]
    lora = RunResult(
        "lora", "lora", {"rouge_l": 0.7, "token_f1": 0.7, "exact_match": 0.5, "perplexity": 12.5}, lora_replies
    )
    return examples, base, lora


def test_compare_generation_report():
    examples, base, lora = _generation_runs()
    report = compare_runs([base, lora], examples, None, "generation", max_samples=2)
    data = report.to_dict()
    assert data["primary_metric"] == "rouge_l"
    assert data["best"]["perplexity"] == ["lora"]
    assert data["disagreements"] is None
    (difference,) = data["pairwise"]
    assert difference["test"] == "paired bootstrap"
    assert difference["mean_difference"] < 0
    assert difference["low"] <= difference["mean_difference"] <= difference["high"]
    assert len(data["samples"]) == 2
    assert data["samples"][1]["reference"] == "The answer is 1."
    assert data["samples"][1]["answers"] == {"base": "I do not know.", "lora": "The answer is 1."}

    markdown = report.to_markdown()
    assert "| Reply perplexity ↓ | 80 | **12.5** |" in markdown
    assert "| ROUGE-L 95% CI (bootstrap) |" in markdown
    assert "## Sample answers (2 of 6 test prompts)" in markdown
    assert "> The answer is 1." in markdown


def test_compare_generation_rejects_non_text_predictions():
    examples, base, _ = _generation_runs()
    numeric = RunResult("numeric", "lora", {}, [1] * 6)
    with pytest.raises(DataError, match="not strings"):
        compare_runs([base, numeric], examples, None, "generation")


def test_run_result_round_trip():
    _, lora, _ = _classification_runs()
    lora.predictions = np.asarray(lora.predictions)
    restored = RunResult.from_dict(json.loads(json.dumps(lora.to_dict())))
    assert restored.predictions == lora.predictions.tolist()
    assert restored.cost == lora.cost
    assert restored.metrics["accuracy"] == pytest.approx(0.9)
