"""Framework overhead: a reasonlab run against the same training written directly with TRL.

For sft and grpo, alternating in one process (--repeats times each):
  (a) reasonlab: `launch.train.train(cfg)`; its `train/seconds` (the `trainer.train()` call, with
      reasonlab's callbacks, progress handling and, for GRPO, its mask-statistics subclass);
  (b) raw TRL: SFTTrainer / GRPOTrainer built here by hand from the same model (the study's base
      checkpoint), the same prompts and completions, batch, steps, learning rate, schedule and
      seed, with a plain accuracy reward for GRPO; the same `trainer.train()` call timed.
Prints medians, spreads, the ratio (a)/(b) (target <= 1.05), training tokens/s (TRL's own
`num_tokens` count over the timed call) and, on a GPU, peak memory. Figures go in docs/benchmarks.md.

    python bench/overhead.py --base outputs/study/base --sft-steps 100 --grpo-steps 20 --repeats 3
    # GPU: a random-initialised Qwen2.5-0.5B-shaped base in bf16 (bench/common.py)
    python bench/common.py --out /tmp/qwen-shape && python bench/overhead.py --base /tmp/qwen-shape --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe_machine, peak_gib, reset_peak  # noqa: E402


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from reasonlab.launch.common import CONF_DIR
    from reasonlab.launch.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def reasonlab_run(trainer: str, base: str, steps: int, out: str, dtype: str) -> tuple[float, int, float | None]:
    """(training seconds, tokens trained on, peak GPU GiB)."""
    from reasonlab.launch.train import train

    cfg = compose([f"trainer={trainer}", f"model.init_from={base}", f"model.dtype={dtype}", f"budget.max_steps={steps}",
                   f"logging_steps={steps}", "progress=false", "eval.progress=false", "eval.probes=[]", "budget.eval_samples=1",
                   f"output_root={out}", "resume=force_restart"])
    reset_peak()
    result = train(cfg)
    return result["train/seconds"], result["train/last_log"].get("num_tokens", 0), peak_gib()


def raw_trl_run(trainer: str, base: str, steps: int, out: str, dtype: str) -> tuple[float, int, float | None]:
    """The same training with TRL only: no reasonlab trainer, callback, reward class or config."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from reasonlab.tasks import load_task

    cfg = compose([f"trainer={trainer}", f"logging_steps={steps}"])  # the values only: batch, lr, schedule, lengths
    m = cfg.trainer
    task = load_task("arith", seed=0)
    examples = task.examples("train")
    model = AutoModelForCausalLM.from_pretrained(f"{base}/final", dtype=getattr(torch, dtype))
    tok = AutoTokenizer.from_pretrained(f"{base}/final")
    cuda = torch.cuda.is_available()
    common = dict(output_dir=out, max_steps=steps, per_device_train_batch_size=m.batch_size,
                  learning_rate=m.learning_rate, lr_scheduler_type=m.lr_scheduler_type, warmup_steps=m.warmup_steps,
                  logging_steps=cfg.logging_steps, save_strategy="no", report_to=[], seed=0, data_seed=0,
                  use_cpu=not cuda, disable_tqdm=True, gradient_checkpointing=False, dataloader_num_workers=0,
                  # TRL's configs default to bf16 autocast; reasonlab sets it only on a GPU with a bf16 model
                  bf16=cuda and dtype == "bfloat16")
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
    reset_peak()
    t0 = time.perf_counter()
    t.train()
    seconds = time.perf_counter() - t0
    last = next((h for h in reversed(t.state.log_history) if "num_tokens" in h), {})
    return seconds, last.get("num_tokens", 0), peak_gib()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="outputs/study/base", help="the study's base run (make study makes it)")
    ap.add_argument("--sft-steps", type=int, default=100)
    ap.add_argument("--grpo-steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trainers", nargs="+", default=["sft", "grpo"], choices=["sft", "grpo"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="bfloat16 on a GPU")
    args = ap.parse_args()
    from reasonlab.launch.common import quiet_libraries

    quiet_libraries()
    rows = []
    for trainer, steps in (("sft", args.sft_steps), ("grpo", args.grpo_steps)):
        if trainer not in args.trainers:
            continue
        ours, raw = [], []
        with tempfile.TemporaryDirectory() as d:  # warm-up, untimed: first CUDA/cuBLAS use, imports, caches
            reasonlab_run(trainer, args.base, 2, d, args.dtype)
        for _ in range(args.repeats):  # alternate, so drift in machine speed hits both alike
            with tempfile.TemporaryDirectory() as d:
                ours.append(reasonlab_run(trainer, args.base, steps, d, args.dtype))
            with tempfile.TemporaryDirectory() as d:
                raw.append(raw_trl_run(trainer, args.base, steps, d, args.dtype))
            print(f"{trainer}: reasonlab {ours[-1][0]:.2f}s, raw TRL {raw[-1][0]:.2f}s", flush=True)
        rows.append((trainer, steps, ours, raw))
    print(f"\n{describe_machine()}, {args.base}, {args.dtype}")
    print("\n| trainer | steps | reasonlab s (median, range) | raw TRL s (median, range) | ratio | reasonlab tokens/s "
          "| raw TRL tokens/s | peak GPU GiB (reasonlab / raw) |\n|---|---|---|---|---|---|---|---|")
    for trainer, steps, ours, raw in rows:
        a, b = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in raw)
        tps = [statistics.median(r[1] / r[0] for r in runs) for runs in (ours, raw)]
        mem = " / ".join("-" if r[-1][2] is None else f"{max(x[2] for x in r):.1f}" for r in (ours, raw))
        print(f"| {trainer} | {steps} | {a:.2f} ({min(r[0] for r in ours):.2f}-{max(r[0] for r in ours):.2f}) "
              f"| {b:.2f} ({min(r[0] for r in raw):.2f}-{max(r[0] for r in raw):.2f}) | {a / b:.3f} "
              f"| {tps[0]:.0f} | {tps[1]:.0f} | {mem} |")


if __name__ == "__main__":
    main()
