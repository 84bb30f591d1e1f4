"""Run DeepSpec's evaluator on a chosen list of task sets and sample caps.

DeepSpec's eval.py has no task or sample flags: parse_args sets ``args.tasks = list(TASKS)`` (nine
fixed sets with fixed caps) and every set's ./eval_datasets/<name>.jsonl must exist. This driver
keeps everything else as eval.py has it: it imports eval.py from the DeepSpec checkout, parses the
flags after "--" with eval.py's own parse_args, replaces ``args.tasks`` with the requested
``[[name, cap], ...]`` (cap null = every row) and spawns eval.py's ``main`` once per visible GPU,
exactly as eval.py's ``__main__`` does. Run it from a directory whose eval_datasets/ holds the sets.

    python -m specops_runtime.adapters.deepspec.eval_driver --deepspec-dir /opt/deepspec \\
        --tasks '[["gsm8k",500],["my-set",null]]' -- --target_name_or_path ... --draft_name_or_path ...
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def parse_tasks(text: str) -> list[tuple[str, int | None]]:
    tasks = json.loads(text)
    if not isinstance(tasks, list) or not tasks:
        raise ValueError("--tasks: a non-empty JSON list of [name, cap] pairs")
    out = []
    for i, item in enumerate(tasks):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"--tasks[{i}]: expected [name, cap], got {item!r}")
        if item[1] is not None and (not isinstance(item[1], int) or item[1] < 1):
            raise ValueError(f"--tasks[{i}]: cap must be a positive integer or null")
        out.append((item[0], item[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, eval_argv = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="eval_driver", description=__doc__.split("\n\n")[0])
    ap.add_argument("--deepspec-dir", required=True)
    ap.add_argument("--tasks", required=True, help='JSON: [["name", cap or null], ...]')
    ap.add_argument("--nprocs", type=int, default=None, help="workers; default: one per visible GPU")
    args = ap.parse_args(own)
    tasks = parse_tasks(args.tasks)

    # Spawned workers get the parent's sys.path, so they import eval.py's module by the same name.
    sys.path.insert(0, args.deepspec_dir)
    deepspec_eval = importlib.import_module("eval")
    sys.argv = ["eval.py", *eval_argv]
    eval_args = deepspec_eval.parse_args()
    eval_args.tasks = tasks

    import torch

    nprocs = args.nprocs if args.nprocs is not None else torch.cuda.device_count()
    if nprocs < 1:
        print("eval_driver: no visible GPU (DeepSpec's evaluator runs one worker per GPU)", file=sys.stderr)
        return 2
    torch.multiprocessing.spawn(deepspec_eval.main, args=(eval_args,), nprocs=nprocs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
