"""How the suite's models are trained (installed as ``iretouch_bench.training``): losses, the
shipped small model's trainer, and the ``iretouch-bench train`` commands (:mod:`.commands`).

Training may use what inference uses (``iretouch_bench.models``) plus the pair maker
(``iretouch_bench.synth``); inference never imports training (import-linter contracts in
pyproject.toml)."""
