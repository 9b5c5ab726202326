"""A question as the data sets and the api produce it, before it enters the bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from qaflow.core.ids import question_id

# Yahoo! Answers topics, class index 1-10, as published by Zhang et al. (2015).
CATEGORIES: dict[int, str] = {
    1: "Society & Culture",
    2: "Science & Mathematics",
    3: "Health",
    4: "Education & Reference",
    5: "Computers & Internet",
    6: "Sports",
    7: "Business & Finance",
    8: "Entertainment & Music",
    9: "Family & Relationships",
    10: "Politics & Government",
}


@dataclass(frozen=True, slots=True)
class Question:
    title: str
    content: str
    reference_answer: str
    category: int | None = None
    source: str | None = None  # e.g. "train.csv:1042", for a person tracing a row
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", question_id(self.title, self.content))
