"""`--help` of the entry points: the config groups with their options, and the main keys with
their defaults and the comments written next to them in conf/*.yaml (the one place defaults live)."""

from __future__ import annotations

import re
from pathlib import Path

from reasonlab.launch.common import CONF_DIR, group_options

USAGE = {
    "config": "python -m reasonlab.train [group=option ...] [key=value ...]   (-m key=a,b ...: a sweep, one run per value)",
    "evaluate": "python -m reasonlab.evaluate model.name_or_path=<checkpoint, run directory or hub id> [key=value ...]",
    "study": "python -m reasonlab.study [key=value ...]   (e.g. seeds=3 output_root=outputs/study-3seeds)",
}
# per entry point: (yaml file, key prefix) whose commented keys are listed
FILES = {
    "config": [("config.yaml", ""), ("trainer/sft.yaml", "trainer."), ("task/arith.yaml", "task."),
               ("model/tiny.yaml", "model."), ("eval/default.yaml", "eval.")],
    "evaluate": [("evaluate.yaml", ""), ("task/arith.yaml", "task."), ("eval/default.yaml", "eval.")],
    "study": [("study.yaml", "")],
}
GROUPS = {"config": ["trainer", "task", "model", "peft", "logger", "eval", "experiment", "hydra/launcher"],
          "evaluate": ["task", "model", "eval", "logger"], "study": []}


def commented_keys(path: Path, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default as written, comment) for every key with a value in a YAML file, nested
    keys joined with dots; the comment is the one on its line, else the comment lines just above
    it. The defaults list and hydra's own keys are left out."""
    out, stack, above = [], [], []  # stack: (indent, key)
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            above.append(line.strip().lstrip("#").strip())
            continue
        m = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not m:  # a blank line or a list item ends a comment block
            above = []
            continue
        indent, key, value, comment = len(m.group(1)), m.group(2), m.group(3), m.group(4)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        comment, above = comment or (" ".join(above) if out or stack[0][1] != key else ""), []  # not the file's header
        if stack[0][1] in ("defaults", "hydra") or not value or key == "name" and not prefix.startswith("eval"):
            continue
        out.append((prefix + ".".join(k for _, k in stack), value, comment))
    return out


def help_text(entry: str) -> str:
    lines = [f"usage: {USAGE[entry]}", ""]
    if GROUPS[entry]:
        lines.append("config groups (group=option):")
        for group in GROUPS[entry]:
            lines.append(f"  {group:<16} {', '.join(group_options(group))}")
        lines.append("")
    lines.append("main keys (default: meaning; trainer/task/model keys of the default options sft, arith, tiny):"
                 if entry == "config" else "main keys (default: meaning):")
    for name, prefix in FILES[entry]:
        for key, value, comment in commented_keys(CONF_DIR / name, prefix):
            lines.append(f"  {key}={value or '...'}".ljust(44) + f" {comment}")
    lines += ["", "Every key of the composed config can be set; see the whole of it with `--cfg job`."
              if entry != "study" else "Each run is a reasonlab.train run: `python -m reasonlab.train --help` lists its keys.",
              "Docs: README.md (running things, configuration), docs/evaluator.md."]
    return "\n".join(lines)
