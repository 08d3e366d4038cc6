"""Framework overhead: a reasonlab run against the same training written directly with TRL.

For sft and grpo, alternating in one process (--repeats times each):
  (a) reasonlab: `launch.train.train(cfg)`; its `train/seconds` (the `trainer.train()` call, with
      reasonlab's callbacks, progress handling and, for GRPO, its mask-statistics subclass);
  (b) raw TRL: SFTTrainer / GRPOTrainer built here by hand from the same model (the study's base
      checkpoint), the same prompts and completions, batch, steps, learning rate, schedule and
      seed, with a plain accuracy reward for GRPO; the same `trainer.train()` call timed.
Prints medians, spreads and the ratio (a)/(b) (target <= 1.05). Figures go in docs/benchmarks.md.

    python bench/overhead.py --base outputs/study/base --sft-steps 100 --grpo-steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from launch.common import CONF_DIR
    from launch.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def reasonlab_run(trainer: str, base: str, steps: int, out: str) -> float:
    from launch.train import train

    cfg = compose([f"trainer={trainer}", f"model.init_from={base}", f"budget.max_steps={steps}", "progress=false",
                   "eval.progress=false", "eval.probes=[]", "budget.eval_samples=1", f"output_root={out}",
                   "resume=force_restart"])
    return train(cfg)["train/seconds"]


def raw_trl_run(trainer: str, base: str, steps: int, out: str) -> float:
    """The same training with TRL only: no reasonlab trainer, callback, reward class or config."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from tasks import load_task

    cfg = compose([f"trainer={trainer}"])  # the values only: batch, lr, schedule, lengths
    m = cfg.trainer
    task = load_task("arith", seed=0)
    examples = task.examples("train")
    model = AutoModelForCausalLM.from_pretrained(f"{base}/final")
    tok = AutoTokenizer.from_pretrained(f"{base}/final")
    common = dict(output_dir=out, max_steps=steps, per_device_train_batch_size=m.batch_size,
                  learning_rate=m.learning_rate, lr_scheduler_type=m.lr_scheduler_type, warmup_steps=m.warmup_steps,
                  logging_steps=cfg.logging_steps, save_strategy="no", report_to=[], seed=0, data_seed=0, use_cpu=True,
                  disable_tqdm=True, gradient_checkpointing=False, dataloader_num_workers=0,
                  bf16=False)  # TRL's configs default to bf16 autocast, which reasonlab uses only on GPUs
    if trainer == "sft":
        data = Dataset.from_dict({"prompt": [ex.prompt for ex in examples],
                                  "completion": [task.format_completion(ex.steps, ex.answer) for ex in examples]})
        t = SFTTrainer(model=model, args=SFTConfig(**common, max_length=m.max_length, completion_only_loss=True,
                                                   packing=False), train_dataset=data, processing_class=tok)
    else:
        data = Dataset.from_dict({"prompt": [ex.prompt for ex in examples], "answer": [ex.answer for ex in examples]})

        def accuracy(completions, answer, **kwargs):
            return [float(task.extract_answer(c) == a) for c, a in zip(completions, answer)]

        def has_answer(completions, **kwargs):
            return [float(task.extract_answer(c) is not None) for c in completions]

        args = GRPOConfig(**common, num_generations=m.num_generations, max_completion_length=cfg.budget.max_completion_length,
                          temperature=m.temperature, beta=m.beta, loss_type=m.loss_type, scale_rewards=m.scale_rewards,
                          epsilon=m.epsilon, reward_weights=list(m.reward_weights), log_completions=False)
        t = GRPOTrainer(model=model, reward_funcs=[accuracy, has_answer], args=args, train_dataset=data,
                        processing_class=tok)
    t0 = time.perf_counter()
    t.train()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="outputs/study/base", help="the study's base run (make study makes it)")
    ap.add_argument("--sft-steps", type=int, default=100)
    ap.add_argument("--grpo-steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trainers", nargs="+", default=["sft", "grpo"], choices=["sft", "grpo"])
    args = ap.parse_args()
    from launch.common import quiet_libraries

    quiet_libraries()
    rows = []
    for trainer, steps in (("sft", args.sft_steps), ("grpo", args.grpo_steps)):
        if trainer not in args.trainers:
            continue
        ours, raw = [], []
        for _ in range(args.repeats):  # alternate, so drift in machine speed hits both alike
            with tempfile.TemporaryDirectory() as d:
                ours.append(reasonlab_run(trainer, args.base, steps, d))
            with tempfile.TemporaryDirectory() as d:
                raw.append(raw_trl_run(trainer, args.base, steps, d))
        rows.append((trainer, steps, ours, raw))
    print("\n| trainer | steps | reasonlab s (median, range) | raw TRL s (median, range) | ratio |\n|---|---|---|---|---|")
    for trainer, steps, ours, raw in rows:
        a, b = statistics.median(ours), statistics.median(raw)
        print(f"| {trainer} | {steps} | {a:.2f} ({min(ours):.2f}-{max(ours):.2f}) | {b:.2f} ({min(raw):.2f}-{max(raw):.2f}) "
              f"| {a / b:.3f} |")


if __name__ == "__main__":
    main()
