"""What the benchmarks share: model shapes, the device, and GPU memory readings.

The GPU benchmarks (#8, part 5) use a random-initialised model of Qwen2.5-0.5B's shape (24 layers,
896 wide, 14 query and 2 key/value heads, MLP 4864, embedding padded to Qwen's 151,936 rows, tied),
built by the same `model=tiny` code path with the character tokenizer: throughput depends on the
shape, not on the weights or the tokenizer.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAPES = {
    "toy": dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vocab_size=1000,
                max_position_embeddings=512),  # bench/gpu.sh's dry run on a CPU
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_layers=24, num_heads=14, num_kv_heads=2,
                         vocab_size=151936, max_position_embeddings=512),
}


def shape_overrides(shape: str) -> list[str]:
    """Hydra overrides that give `model=tiny` the named shape."""
    return [f"model.{k}={v}" for k, v in SHAPES[shape].items()]


def make_base(shape: str, out: str, dtype: str = "bfloat16", seed: int = 0) -> str:
    """Build a random-initialised model of `shape` with the arith task's tokenizer and save it as a
    run directory (`out/final`), the form `model.init_from` and the benchmarks' --base take."""
    import torch

    from reasonlab.models import DTYPES, build_tiny, count_parameters, save_checkpoint
    from reasonlab.tasks import load_task

    model, tok = build_tiny(SHAPES[shape], load_task("arith"), seed)
    model = model.to(DTYPES[dtype])
    save_checkpoint(model, tok, Path(out) / "final")
    print(f"base: {shape}, {count_parameters(model) / 1e6:.0f}M parameters, {dtype}, torch {torch.__version__} -> {out}")
    return out


def timed(fn, repeats: int):
    """(median seconds, (min, max), the last call's result) over `repeats` calls of fn."""
    import statistics
    import time

    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (min(times), max(times)), out


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    """Peak GPU memory allocated by torch since the last reset_peak (None on CPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def forward_seconds(model, fn):
    """(fn's result, its wall seconds, seconds spent inside the model's forward calls, how many
    calls). A call is counted once from where it enters the model, its decoder or its output head
    (the truncation pass calls the last two on their own) until it leaves; calls nested inside it
    are not counted again. On a GPU each call's start and end wait for the device. What is left,
    wall minus forward, is the evaluator's own work: bookkeeping, tokenizing, cache row selection."""
    import time

    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    state = {"depth": 0, "start": 0.0, "inside": 0.0, "calls": 0}

    def enter(module, args):
        if state["depth"] == 0:
            sync()
            state["start"] = time.perf_counter()
        state["depth"] += 1

    def leave(module, args, output):
        state["depth"] -= 1
        if state["depth"] == 0:
            sync()
            state["inside"] += time.perf_counter() - state["start"]
            state["calls"] += 1

    modules = [model]
    for getter in ("get_decoder", "get_output_embeddings"):
        try:
            part = getattr(model, getter)()
        except (AttributeError, ValueError, NotImplementedError):
            part = None
        if part is not None and all(part is not m for m in modules):
            modules.append(part)
    handles = [h for m in modules for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    return out, wall, state["inside"], state["calls"]


def describe_machine() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="build a random-initialised base run of a benchmark shape")
    ap.add_argument("--shape", default="qwen2.5-0.5b", choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    make_base(args.shape, args.out, args.dtype)


def truncation_requests(task, chains) -> list:
    """Information gain's and early answering's requests at every truncation point of each
    (prompt, steps, gold answer) chain."""
    from reasonlab.eval.requests import AnswerLogprob, ForcedAnswer

    out = []
    for prompt, steps, gold in chains:
        context = prompt
        for step in ["", *steps]:
            context += step + (task.step_separator if step else "")
            out += [AnswerLogprob(context, gold), ForcedAnswer(context, expect=gold)]
    return out
