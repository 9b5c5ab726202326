"""Versioned schema migrations, applied in order at start-up and recorded, so each runs once.

Written in the SQL that SQLite and PostgreSQL share; ``{json}``, ``{float}`` and
``{serial}`` are filled in per dialect.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """CREATE TABLE IF NOT EXISTS questions (
                question_id TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                content TEXT NOT NULL,
                reference_answer TEXT NOT NULL,
                category INTEGER,
                run_id TEXT,
                submitted_at {float} NOT NULL,
                enqueued_at {float} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS results (
                question_id TEXT PRIMARY KEY,
                status TEXT NOT NULL CHECK (status IN ('validated', 'exhausted', 'failed')),
                answer TEXT,
                score {float},
                best_generation INTEGER,
                generations INTEGER NOT NULL,
                delivery INTEGER NOT NULL,
                model TEXT,
                scorer {json},
                error TEXT,
                run_id TEXT,
                submitted_at {float} NOT NULL,
                finished_at {float} NOT NULL,
                rank {float} NOT NULL,
                body {json} NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS results_run ON results (run_id)",
            """CREATE TABLE IF NOT EXISTS attempts (
                question_id TEXT NOT NULL,
                generation INTEGER NOT NULL,
                answer TEXT NOT NULL,
                score {float} NOT NULL,
                decision TEXT NOT NULL,
                model TEXT NOT NULL,
                provider TEXT NOT NULL,
                scorer {json} NOT NULL,
                llm_latency_ms {float} NOT NULL,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                run_id TEXT,
                scored_at {float} NOT NULL,
                body {json} NOT NULL,
                PRIMARY KEY (question_id, generation)
            )""",
            """CREATE TABLE IF NOT EXISTS dead_letters (
                id {serial} PRIMARY KEY,
                dedup_key TEXT NOT NULL UNIQUE,
                question_id TEXT,
                reason TEXT NOT NULL,
                stage TEXT NOT NULL,
                origin_topic TEXT NOT NULL,
                origin_partition INTEGER,
                origin_offset BIGINT,
                failed_at {float} NOT NULL,
                body {json} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS runs (
                run_id TEXT PRIMARY KEY,
                started_at {float} NOT NULL,
                finished_at {float},
                config {json} NOT NULL,
                summary {json}
            )""",
        ],
    ),
    (
        2,
        "index results by finish time (dashboard windows)",
        ["CREATE INDEX IF NOT EXISTS results_finished_at ON results (finished_at)"],
    ),
    (
        3,
        "mark truncated answers (cut by the provider's token limit or by MAX_ANSWER)",
        [
            "ALTER TABLE results ADD COLUMN truncated BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE attempts ADD COLUMN truncated BOOLEAN NOT NULL DEFAULT FALSE",
        ],
    ),
    (
        4,
        "call ledger: one row per LLM call (qaflow.store.ledger)",
        [
            """CREATE TABLE IF NOT EXISTS llm_calls (
                question_id TEXT NOT NULL,
                generation INTEGER NOT NULL,
                delivery INTEGER NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                status TEXT NOT NULL,
                error TEXT,
                latency_ms {float} NOT NULL,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                finish_reason TEXT,
                retry_wait_s {float},
                cost_usd {float},
                run_id TEXT,
                started_at {float} NOT NULL,
                finished_at {float} NOT NULL,
                PRIMARY KEY (question_id, generation, delivery)
            )""",
            "CREATE INDEX IF NOT EXISTS llm_calls_run ON llm_calls (run_id)",
            "CREATE INDEX IF NOT EXISTS llm_calls_finished_at ON llm_calls (finished_at)",
        ],
    ),
    (
        5,
        "index questions by submission time, of any run and of one run (qaflow trace --list, run summaries)",
        [
            "CREATE INDEX IF NOT EXISTS questions_submitted_at ON questions (submitted_at)",
            "CREATE INDEX IF NOT EXISTS questions_run_submitted_at ON questions (run_id, submitted_at)",
        ],
    ),
]
