"""Chat prompts: the tokenizer's chat template around a conversation, the text TRL builds from a
conversational dataset (shared by the math-word tasks and `jsonl`)."""

from __future__ import annotations

from typing import Callable

from reasonlab.core import ConfigError


def chat_renderer(tokenizer) -> Callable[[list[dict]], str]:
    """A function from messages ([{role, content}, ...]) to the prompt text: the chat template with
    the generation prompt (the assistant's turn opened), without the BOS token the tokenizer adds
    itself. A ConfigError when the tokenizer has no chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "task.chat=true but the model's tokenizer has no chat template; use an instruct model or set task.chat=false"
        )
    bos = tokenizer.bos_token
    adds_bos = bool(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]

    def render(messages: list[dict]) -> str:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text[len(bos):] if adds_bos and text.startswith(bos) else text  # the tokenizer adds it

    return render
