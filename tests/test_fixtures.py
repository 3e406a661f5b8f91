from transformers import AutoModel, AutoTokenizer


def test_tiny_models_load(tiny_llama_dir, tiny_bert_dir):
    for folder in (tiny_llama_dir, tiny_bert_dir):
        model = AutoModel.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert model.config.vocab_size == len(tokenizer)
