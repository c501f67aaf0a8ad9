"""Jobs other than finetuning runs that run in their own process with a run directory
(status.json, metrics.jsonl, engine.log), so that every front door follows them like a run:
`pretrain` (an environment's checkpoint ladder; `python -m engine pretrain`)."""
