"""Checkpoints that look like the hub's, built in-process in seconds and saved with save_pretrained.

- `qwen2_style(dir)`: a small Qwen2ForCausalLM with tied embeddings, a byte-level BPE tokenizer
  trained with `tokenizers` on GSM8K's train text, Qwen2.5-Instruct's special tokens (eos
  `<|im_end|>`, pad `<|endoftext|>`), its chat template (the default system prompt included) and a
  generation_config with two eos ids.
- `llama_style(dir)`: a small LlamaForCausalLM with a SentencePiece-style tokenizer (Metaspace
  pre-tokenizer, `▁` for spaces, BPE, a BOS token `<s>` the tokenizer adds) and a Llama-3-style
  chat template.

Both are untrained (random weights): they produce junk, as a model does on inputs it never saw,
which is what the loading, boundary and no-crash tests need.
"""

from __future__ import annotations

import json
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

# Qwen2.5-Instruct's template for conversations without tools (its tool branches left out)
QWEN_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Llama-3's layout: a BOS, headers around each role, <|eot_id|> after each turn
LLAMA_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def gsm8k_texts(n: int = 2000) -> list[str]:
    with open(SHARED_DATA / "gsm8k" / "train.jsonl") as fh:
        return [(row := json.loads(line))["question"] + "\n" + row["answer"] for line, _ in zip(fh, range(n))]


def _save(model, tokenizer, out: Path, eos_ids: list[int], pad_id: int, bos_id=None) -> Path:
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(bos_token_id=bos_id, eos_token_id=eos_ids, pad_token_id=pad_id,
                                               do_sample=True, temperature=0.7, top_p=0.8, top_k=20)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def qwen2_style(out: Path, vocab_size: int = 1200, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(gsm8k_texts(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=["<|im_start|>"], model_max_length=32768)
    tok.chat_template = QWEN_TEMPLATE
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id))
    ids = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    return _save(model, tok, out, ids, tok.pad_token_id)


def llama_style(out: Path, vocab_size: int = 1200, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])  # Llama-2's tokenizer.json decoder
    alphabet = [f"<0x{i:02X}>" for i in range(256)]
    bpe.train_from_iterator(gsm8k_texts(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials + alphabet))
    bos = bpe.token_to_id("<s>")
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="<|eot_id|>", unk_token="<unk>",
                                  pad_token="</s>", additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>"],
                                  model_max_length=8192)
    tok.chat_template = LLAMA_TEMPLATE
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False, bos_token_id=bos,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    ids = [tok.eos_token_id, tok.convert_tokens_to_ids("</s>")]
    return _save(model, tok, out, ids, tok.pad_token_id, bos_id=bos)


BUILDERS = {"qwen2": qwen2_style, "llama": llama_style}
