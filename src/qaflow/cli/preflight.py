"""``qaflow run``'s pre-flight check: are the remote servers the run needs there at all?

Without it, a run against a stopped Ollama retries every question to the end and reports
100% failed (the reason only in ``qaflow trace``). Checked, from the plugin registries:
the LLM provider's URL (``QAFLOW_LLM_BASE_URL`` or its registry default) unless the provider
runs in process (no default URL: the offline simulator), and the scorer service's URL when
the scorer is remote. Each failure is one line naming the server, the URL, why, and what to do.
"""

from __future__ import annotations

from qaflow.core import plugins
from qaflow.core.settings import EmbeddedSettings
from qaflow.plumbing.reach import check_reachable

SCORER_CHECK_TIMEOUT_S = 5.0  # the scorer has no connect timeout of its own; LLMs use QAFLOW_LLM_CONNECT_TIMEOUT_S


def _hint(*parts: str) -> str:
    """``a, b, or c``: what to do, from the plugin's own hint to skipping the check."""
    done = [p for p in (*parts, "skip this check with --no-server-check") if p]
    return ", ".join(done[:-1]) + ", or " + done[-1]


def check_servers(s: EmbeddedSettings) -> None:
    """Raise :class:`~qaflow.core.errors.UnreachableError` for the first server that does not answer."""
    llm = plugins.family("llm_provider").get(s.llm_provider)
    if llm.default_url:  # a provider without a default URL runs in process
        offline = ", ".join(p.name for p in plugins.family("llm_provider").plugins if not p.default_url)
        alternative = f"pick another --llm ({offline} needs no server)" if offline else ""
        check_reachable(f"the {llm.name} LLM", s.base_url, timeout_s=s.llm_connect_timeout_s,
                        hint=_hint(llm.start_hint, alternative))
    scorer = plugins.family("scorer").get(s.scorer)
    if scorer.remote:
        in_process = ", ".join(p.name for p in plugins.family("scorer").plugins if not p.remote)
        check_reachable("the scorer service", s.scorer_url.rstrip("/"), timeout_s=SCORER_CHECK_TIMEOUT_S,
                        hint=_hint(scorer.start_hint, f"pick another --scorer ({in_process})"))
