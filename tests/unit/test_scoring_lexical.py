import pytest

from qaflow.core.errors import ScoringError
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import make_scorer
from qaflow.scoring.lexical import LexicalScorer, normalize, token_f1


@pytest.fixture
def scorer() -> LexicalScorer:
    s = LexicalScorer()
    s.start()
    return s


def test_exact_match_scores_one(scorer: LexicalScorer) -> None:
    text = "Water boils at 100 degrees Celsius at sea level."
    assert scorer.score([text], [text]) == [1.0]


def test_disjoint_scores_zero(scorer: LexicalScorer) -> None:
    assert scorer.score(["purple elephants dance"], ["Water boils at sea level"]) == [0.0]


def test_normalisation_ignores_case_punctuation_and_articles() -> None:
    assert normalize("The Cat, an Owl & a DOG!") == ["cat", "owl", "dog"]
    assert token_f1("The cat sat on the mat.", "cat sat on mat") == 1.0
    # "theory" contains "the" but is not an article
    assert normalize("the theory") == ["theory"]


def test_partial_overlap_is_token_f1() -> None:
    # candidate 4 tokens, reference 2, 2 in common: P=0.5, R=1, F1=2/3
    assert token_f1("paris is in france", "paris france") == pytest.approx(2 / 3)
    # repeated tokens count once per occurrence (multiset overlap)
    assert token_f1("yes yes yes", "yes") == pytest.approx(0.5)


def test_empty_side_scores_zero() -> None:
    assert token_f1("", "anything") == 0.0
    assert token_f1("The.", "a") == 0.0  # both normalise to nothing


def test_batch_equals_one_at_a_time(scorer: LexicalScorer) -> None:
    cands = ["the cat sat", "dogs bark loudly", "", "Paris is the capital of France"]
    refs = ["a cat sat down", "cats meow", "something", "France's capital is Paris"]
    assert scorer.score(cands, refs) == [scorer.score([c], [r])[0] for c, r in zip(cands, refs, strict=True)]
    assert scorer.score([], []) == []


def test_length_mismatch_raises(scorer: LexicalScorer) -> None:
    with pytest.raises(ScoringError, match="2 candidates but 1 references"):
        scorer.score(["a", "b"], ["a"])


def test_non_string_raises(scorer: LexicalScorer) -> None:
    with pytest.raises(ScoringError, match="pair 0"):
        scorer.score([None], ["a"])  # type: ignore[list-item]


def test_identity_and_factory() -> None:
    scorer = make_scorer(ScorerSettings(scorer="lexical"))
    assert isinstance(scorer, LexicalScorer)
    assert scorer.identity == {"name": "lexical", "metric": "token-f1", "version": "2", "tokens": "words+chars"}


# --- scripts without spaces (issue 9): one token per character, CMRC 2018 mixed segmentation ---


def test_a_correct_chinese_answer_does_not_score_zero() -> None:
    # Whitespace splitting made each sentence one token: 0.0 on the old main (BERTScore: 0.953).
    reference = "水在海平面上的沸点是100摄氏度。"
    answer = "在海平面上\uff0c水的沸点是100摄氏度。"
    assert token_f1(answer, reference) > 0.9
    assert token_f1("我不知道。", reference) < 0.2


def test_japanese_and_thai_are_split_per_character_with_marks_kept() -> None:
    assert normalize("水は100度で沸騰します。") == ["水", "は", "100", "度", "で", "沸", "騰", "し", "ま", "す"]
    thai = normalize("น้ำเดือด")
    assert thai[0] == "น\u0e49"  # the tone mark stays on its consonant
    assert "".join(thai) == "น้ำเดือด"
    assert token_f1("น้ำเดือดที่ 100 องศา", "น้ำเดือดที่ 100 องศาเซลเซียส") > 0.7


def test_mixed_text_keeps_latin_words_whole_and_drops_unicode_punctuation() -> None:
    assert normalize("Python的列表\uff0c“list”\uff01") == ["python", "的", "列", "表", "list"]
    assert normalize("naïve café") == ["naïve", "café"]
