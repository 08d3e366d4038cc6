"""No model output is ever run as code: no eval/exec/sympify anywhere in the project's source."""

import re

from conftest import ROOT

PACKAGES = ["reasonlab", "core", "tasks", "models", "trainers", "rewards", "eval", "launch", "bench"]
# a call of the builtins (not a method such as model.eval()), or sympify/parse_expr on anything
FORBIDDEN = re.compile(r"(?<![\w.])(eval|exec|compile)\s*\(|sympify\s*\(|parse_expr\s*\(|__import__\s*\(")


def test_no_code_execution_of_text_in_the_source():
    hits = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if FORBIDDEN.search(code):
                    hits.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not hits, "code execution of text:\n" + "\n".join(hits)


def test_the_scan_would_catch_it():
    assert FORBIDDEN.search("value = eval(answer)")
    assert FORBIDDEN.search("x = sympy.sympify(text)")
    assert not FORBIDDEN.search("model.eval()")
    assert not FORBIDDEN.search("from eval.evaluator import evaluate")


def test_trust_remote_code_is_off_by_default():
    from conftest import compose

    assert compose([]).model.trust_remote_code is False
    assert compose(["model=hf", "model.name_or_path=x"]).model.trust_remote_code is False


def test_wandb_key_never_written_to_the_run(run_cfg, base_run, monkeypatch, tmp_path):
    """A W&B key in the environment appears in no file of the run directory (config, logs, W&B files)."""
    from pathlib import Path

    from reasonlab.launch.train import train

    secret = "0123456789abcdef0123456789abcdef01234567"  # the shape of a W&B API key
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = run_cfg("logger=wandb", f"model.init_from={base_run}", "eval.probes=[cot]")
    train(cfg)
    leaks = [str(p) for p in Path(cfg.run_dir).rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_no_pickle_loading_and_trainer_state_loads_with_weights_only():
    """The project loads weights only as safetensors; the one pickle path, the Trainer's own
    optimizer/scheduler/RNG files on resume, goes through torch.load(weights_only=True)."""
    import inspect

    import transformers.trainer as hf_trainer

    pattern = re.compile(r"torch\.load\s*\(|pickle\.loads?\s*\(|joblib\.load\s*\(")
    hits = [f"{p.relative_to(ROOT)}:{i}" for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line.split("#", 1)[0])]
    assert not hits, hits
    source = inspect.getsource(hf_trainer)
    starts = [m.start() for m in re.finditer(r"torch\.load\(", source)]
    assert starts and all("weights_only=True" in source[m.start(): m.start() + 400]
                          for m in re.finditer(r"torch\.load\(", source)), "a Trainer torch.load without weights_only"
