"""Rate limiting for the llm-worker: adaptive concurrency (AIMD) and a shared
requests-per-minute quota, combined around any LLM provider by :class:`LimitedProvider`.
"""

from qaflow.services.limits.aimd import AimdLimiter
from qaflow.services.limits.provider import CallObserver, LimitedProvider
from qaflow.services.limits.rpm import LocalRpmLimiter, RedisRpmLimiter, RpmLimiter, open_rpm_limiter

__all__ = [
    "AimdLimiter",
    "CallObserver",
    "LimitedProvider",
    "LocalRpmLimiter",
    "RedisRpmLimiter",
    "RpmLimiter",
    "open_rpm_limiter",
]
