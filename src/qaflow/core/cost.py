"""Money spent on LLM calls, from token counts and a price table.

The price table maps a model name to ``(input, output)`` prices in US dollars per million
tokens, the unit providers publish prices in (OpenAI and Google price pages). The cost of
one call is ``prompt_tokens / 1e6 * input + completion_tokens / 1e6 * output``: the same
formula as LiteLLM's ``cost_per_token`` (``prompt_tokens * input_cost_per_token +
completion_tokens * output_cost_per_token``, with prices per single token), which is what
LiteLLM's spend tracking records per request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

PriceTable = Mapping[str, tuple[float, float]]  # model -> (USD per 1M input tokens, USD per 1M output tokens)


def price_for(prices: PriceTable, model: str) -> tuple[float, float] | None:
    """The model's prices: an exact name first, else the entry ``"*"`` (any model), else None."""
    if model in prices:
        return prices[model]
    return prices.get("*")


def call_cost_usd(
    prices: PriceTable, model: str, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """USD of one call, or None when the model has no price. Missing token counts count as 0."""
    price = price_for(prices, model)
    if price is None:
        return None
    input_per_m, output_per_m = price
    return (prompt_tokens or 0) / 1e6 * input_per_m + (completion_tokens or 0) / 1e6 * output_per_m


def format_usd(value: float) -> str:
    """US dollars for people, the one money format of the terminal summary, the HTML report
    and the dashboard: cents from $1 up (``$1,234.57``); below, three significant digits
    (``$0.000165``, not ``$0.0002``) without trailing zeros past the cents (``$0.0012``,
    ``$0.50``), and eight decimals at most (the precision the summaries keep)."""
    if value < 0:
        return "-" + format_usd(-value)
    if value >= 1 or value == 0:
        return f"${value:,.2f}"
    if value < 5e-9:
        return "<$0.00000001"
    decimals = min(8, max(2, 2 - math.floor(math.log10(value))))
    text = f"{value:.{decimals}f}"
    whole, frac = text.split(".")
    return f"${whole}.{frac[:2]}{frac[2:].rstrip('0')}"
