"""The evaluator: `from eval import evaluate, EvalConfig` (docs/evaluator.md)."""


def __getattr__(name):  # lazy: importing eval.config or eval.requests does not load torch
    if name == "evaluate":
        from reasonlab.eval.evaluator import evaluate

        return evaluate
    if name == "EvalConfig":
        from reasonlab.eval.config import EvalConfig

        return EvalConfig
    raise AttributeError(f"module 'eval' has no attribute {name!r}")
