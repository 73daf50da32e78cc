"""Evaluate a policy (+ optional LoRA adapter) on benchmarks: generate → verify → accuracy, pass@k, maj@k.

The same ``negrl`` generation and verifiers as training. Writes ``<output_dir>/report.json`` (config, metrics and
per-problem verdicts of every sample, so two runs can be diffed), ``<output_dir>/config.yaml`` (the resolved config)
and prints a Markdown table.

Commands (from the repository root):

    # the tiny policy on the embedded arithmetic task: 8 samples per problem, pass@1/4/8 and maj@8
    python -m eval.run --model runs/base/policy --benchmarks arithmetic --limit 200 --num_samples 8 --ks 1 4 8 \
        --temperature 1.0 --task_kwargs '{"min_steps": 3, "max_steps": 3, "digits": 2}'

    # SmolLM2-135M-Instruct (offline GGUF) on small subsets of the real benchmarks, greedy, chat template plus
    # the benchmarks' answer-format instruction (a post-trained policy: --chat true alone, its training prompts)
    python -m eval.run --model smollm2 --benchmarks gsm8k math500 humaneval mbpp --limit 20 --chat true \
        --chat_instruction true --temperature 0 --max_new_tokens 256 --output_dir runs/eval/smollm2

    # a base model with few-shot prompts, and a LoRA adapter on top; or everything from a YAML file
    python -m eval.run --model Qwen/Qwen2.5-Math-1.5B --adapter runs/step_rl/adapter --benchmarks gsm8k --few_shot 4
    python -m eval.run --config eval/configs/smoke.yaml
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


if __package__ in (None, ""):  # `python eval/run.py` as well as `python -m eval.run`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import count_unverified, markdown_table, problem_rows, summarize  # noqa: E402
from eval.prompts import build_prompts  # noqa: E402
from negrl.experiments.config import write_resolved_config  # noqa: E402
from negrl.generation import GenerationConfig, generate_rollouts  # noqa: E402
from negrl.problems import load_problems  # noqa: E402
from negrl.verifiers import verify_rollouts  # noqa: E402


@dataclass
class EvalConfig:
    """What to evaluate and how (every field is a CLI flag and a YAML key)."""

    model: str = field(metadata={"help": "HF id, local model directory, or 'smollm2'."})
    benchmarks: list[str] = field(default_factory=lambda: ["arithmetic"], metadata={"help": "Benchmark names."})
    adapter: str | None = field(default=None, metadata={"help": "A saved peft (LoRA) adapter to load on top."})
    data_path: str | None = field(default=None, metadata={"help": "Data root (default: $NEGRL_DATA or ../shared/data)."})
    split: str = "test"
    limit: int | None = field(default=None, metadata={"help": "First N problems of each benchmark."})
    num_samples: int = field(default=1, metadata={"help": "Samples per problem (n of pass@k)."})
    ks: list[int] = field(default_factory=lambda: [1], metadata={"help": "k values of pass@k and maj@k."})
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    batch_size: int = 64
    few_shot: int = field(default=0, metadata={"help": "Worked examples per prompt (base models)."})
    chat: bool = field(default=False, metadata={
        "help": "The problem in the tokenizer's chat template, exactly as sampling and training format it."})
    chat_instruction: bool = field(default=False, metadata={
        "help": "With --chat: append the benchmark's answer-format instruction (training prompts lack it)."})
    seed: int = 0
    device: str | None = None
    dtype: str = "auto"
    backend: str = "hf"
    verify_workers: int = field(default=4, metadata={"help": "Threads running verifiers (code runs in subprocesses)."})
    task_kwargs: str = field(default="{}", metadata={"help": "JSON knobs of an embedded task, e.g. '{\"digits\": 1}'."})
    output_dir: str = "runs/eval"
    threads: int | None = field(default=None, metadata={"help": "torch.set_num_threads (CPU)."})

    def __post_init__(self) -> None:
        if self.num_samples < max(self.ks):
            raise ValueError(f"num_samples={self.num_samples} must be >= max(ks)={max(self.ks)}")
        if self.chat_instruction and not self.chat:
            raise ValueError("chat_instruction=true needs chat=true (the instruction is a chat-prompt option)")
        if self.temperature == 0 and self.num_samples > 1:
            raise ValueError("num_samples > 1 needs temperature > 0 (greedy samples are identical)")


def evaluate_benchmark(cfg: EvalConfig, name: str, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Load → prompt → generate → verify → metrics for one benchmark; returns its report section."""
    from negrl.tasks import TASKS

    knobs = json.loads(cfg.task_kwargs) if name in TASKS else {}
    problems = load_problems(name, path=cfg.data_path, split=cfg.split, limit=cfg.limit, **knobs)
    prompted, stops = build_prompts(name, problems, few_shot=cfg.few_shot, chat=cfg.chat, path=cfg.data_path,
                                    instruction=cfg.chat_instruction)
    gen = GenerationConfig(
        num_samples=cfg.num_samples, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, stop=stops, seed=cfg.seed, backend=cfg.backend, use_chat_template=cfg.chat,
    )  # fmt: skip
    start = time.time()
    rollouts = generate_rollouts(prompted, model, tokenizer, gen, model_name=cfg.model)
    gen_s = time.time() - start
    verdicts = verify_rollouts(problems, rollouts, max_workers=cfg.verify_workers)
    rows = problem_rows(problems, rollouts, verdicts, cfg.ks)
    return {
        "benchmark": name, "n_problems": len(problems), "stops": stops, "generate_s": round(gen_s, 2),
        "verify_s": round(time.time() - start - gen_s, 2), "metrics": summarize(rows),
        "unverified": count_unverified(rows), "problems": rows,
    }  # fmt: skip


def run(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate every benchmark of ``cfg``, write the report and config, print and return the report."""
    import torch

    from negrl.modeling import load_policy

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved_config(out / "config.yaml", cfg)
    if cfg.backend == "vllm":  # GPU: vLLM generates, the HF tokenizer formats chat prompts
        from negrl.generation.vllm import load_vllm
        from negrl.modeling import load_tokenizer

        if cfg.adapter:
            raise ValueError("--adapter with --backend vllm is not supported: merge the adapter first")
        model, tokenizer = load_vllm(cfg.model, dtype=cfg.dtype), load_tokenizer(cfg.model)
    else:
        model, tokenizer = load_policy(cfg.model, dtype=cfg.dtype, device=cfg.device, adapter=cfg.adapter)
    sections = {name: evaluate_benchmark(cfg, name, model, tokenizer) for name in cfg.benchmarks}
    table = markdown_table(
        {n: s["metrics"] for n, s in sections.items()},
        {n: s["n_problems"] for n, s in sections.items()},
        {n: s["unverified"] for n, s in sections.items()},
    )
    from negrl.verifiers.sandbox import sandbox_isolation

    report = {"config": asdict(cfg), "table": table, "code_sandbox": sandbox_isolation(), "benchmarks": sections}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=lambda o: asdict(o)))
    print(table)
    print(f"report: {out / 'report.json'}")
    return report


def make_parser() -> Any:
    from trl import TrlParser

    return TrlParser((EvalConfig,))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (cfg,) = make_parser().parse_args_and_config(args=argv)
    return run(cfg)


if __name__ == "__main__":
    main()
