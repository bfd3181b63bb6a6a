"""Prices per million tokens and the token estimate used for ``--dry-run`` and the budget.

Source: OpenAI's API pricing page (https://openai.com/api/pricing), standard (non-batch) tier,
as published from August 2024 through 2025; not re-checked from this offline build, so treat the
figures as a stated assumption and override them with ``price_per_mtok`` when they change.
Cached-input discounts are ignored (costs are therefore upper bounds). Models not listed (local
vLLM/Ollama servers, other providers) have no price: their cost is recorded as ``None`` and a
budget needs an explicit ``price_per_mtok``.

Actual cost is computed from the ``usage`` the API returns with each answer, so it is exact up to
the price table; the *estimate* uses OpenAI's published image-token rule for ``detail: high``
(scale to fit 2048x2048, then shortest side to 768, then 170 tokens per 512-pixel tile + 85).
``gpt-4o-mini`` bills images at a different token rate, so its estimate is low; its recorded cost,
from usage, is not.
"""

from __future__ import annotations

import math

#: model id (or snapshot) -> (USD per 1M input tokens, USD per 1M output tokens).
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-2025-04-14": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-mini-2025-04-14": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-nano-2025-04-14": (0.10, 0.40),
}
PRICE_SOURCE = "openai.com/api/pricing, standard tier, as published 2024-08..2025 (not re-checked offline)"


def price_for(model: str) -> tuple[float, float] | None:
    return PRICES_PER_MTOK.get(model)


def cost_usd(prompt_tokens: int, completion_tokens: int, price: tuple[float, float] | None) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6


def image_tokens(width: int, height: int) -> int:
    """OpenAI's published token count for one image sent with ``detail: high``."""
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        s = 2048 / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > 768:
        s = 768 / min(w, h)
        w, h = w * s, h * s
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


def text_tokens(text: str) -> int:
    """A deliberately generous token estimate for English text (1 token per 3 characters)."""
    return math.ceil(len(text) / 3) + 8
