"""sft: supervised fine-tuning on reference reasoning, with TRL's SFTTrainer.

The baseline every RL method is compared against, and the method whose effect on reasoning
reasonlab exists to measure.
  1) Data: prompt/completion pairs; the completion is the reference steps, then the answer
     prefix and the answer (`task.format_completion`), then EOS.
  2) Loss: next-token cross-entropy on the completion tokens only (TRL's completion_only_loss).
  3) No sampling, no reward: the model imitates the traces whatever they contain.
  4) `trainer.target` picks the trace variant (tasks/variants.py): trace (default),
     answer_only, swapped (another problem's reasoning), filler (" ..." of the same length).

    python -m reasonlab.train trainer=sft task=arith model=tiny seed=0
    python -m reasonlab.train trainer=sft trainer.target=swapped
"""

from __future__ import annotations

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from reasonlab.tasks.variants import sft_completions
from reasonlab.trainers.base import RunContext, common_args, fit_max_length, train_examples
from reasonlab.trainers.options import build_config


def sft_dataset(ctx: RunContext) -> Dataset:
    examples = train_examples(ctx)
    completions = sft_completions(ctx.task, examples, ctx.method.get("target", "trace"), seed=ctx.cfg.seed)
    return Dataset.from_dict({"prompt": [ex.prompt for ex in examples], "completion": completions})


def build(ctx: RunContext) -> SFTTrainer:
    dataset = sft_dataset(ctx)
    max_length = fit_max_length(ctx, [p + c for p, c in zip(dataset["prompt"], dataset["completion"])], "examples")
    args = build_config(SFTConfig, ctx.method, dict(
        **common_args(ctx),
        max_length=max_length,
        completion_only_loss=True,
        packing=False,
        dataset_num_proc=None,
    ))
    return SFTTrainer(
        model=ctx.model,
        args=args,
        train_dataset=dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
