"""The scorers, one line each: name, class, and what each needs.

Pure data (see :mod:`qaflow.core.plugins`): ``QAFLOW_SCORER`` is checked against these names,
its help text and docs/configuration.md list them, and :func:`qaflow.scoring.make_scorer`
imports only the chosen class (so the light install never imports torch). The first line is
the default.
"""

from __future__ import annotations

from qaflow.core.plugins import Family, Plugin

FAMILY = Family("scorer", (
    Plugin("bertscore", "qaflow.scoring.bertscore:BertScoreScorer", "real BERTScore, needs qaflow[bertscore]"),
    Plugin("lexical", "qaflow.scoring.lexical:LexicalScorer", "token F1, light"),
    Plugin("remote", "qaflow.scoring.remote:RemoteScorer", "the scorer service at QAFLOW_SCORER_URL",
           requires=("scorer_url",), remote=True,
           start_hint="start the scorer service (or check QAFLOW_SCORER_URL)"),
))
