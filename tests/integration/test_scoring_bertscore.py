"""Real BERTScore on the packaged all-MiniLM-L6-v2, on CPU. The model loads once per module."""

import os
from pathlib import Path

import pytest

from qaflow.core.errors import ScoringError
from qaflow.core.settings import ScorerSettings
from qaflow.scoring import make_scorer, packaged_model_dir
from qaflow.scoring.bertscore import PACKAGED_MODEL_NAME, BertScoreScorer

pytestmark = pytest.mark.bertscore

# (reference, close paraphrase, partly right, unrelated). Measured F1 on MiniLM L6 (bert-score
# 0.3.13, transformers 5.23): paraphrase 0.80-0.87, partial 0.41-0.71, unrelated 0.10-0.19.
CASES = [
    (
        "The sky looks blue because of Rayleigh scattering. Sunlight hits the molecules in the air, and "
        "short blue wavelengths are scattered much more than long red ones. That scattered blue light "
        "reaches our eyes from every direction of the sky.",
        "Sunlight is scattered by the gas molecules of the atmosphere, an effect called Rayleigh "
        "scattering. Blue light has a shorter wavelength than red light, so it is scattered far more. "
        "We therefore see blue light coming from all over the sky.",
        "The sky is blue because sunlight goes through the atmosphere. Some colours of the light are "
        "changed by the air on the way.",
        "To make a good pizza dough, mix flour, water, yeast and salt, knead it for ten minutes and let "
        "it rise for two hours before baking.",
    ),
    (
        "Hold your breath for about ten seconds, or drink a glass of cold water slowly without stopping. "
        "Breathing into a paper bag can also help. If hiccups last for more than two days, see a doctor.",
        "Try holding your breath for ten seconds or slowly sipping a glass of cold water in one go. "
        "Breathing into a paper bag works for some people. Hiccups that go on for over two days should "
        "be checked by a doctor.",
        "Drinking some water usually helps. Most of the time they just go away by themselves.",
        "The French Revolution began in 1789 with the storming of the Bastille and ended the absolute "
        "monarchy of Louis XVI.",
    ),
    (
        "Bacteria are single-celled living organisms that can reproduce on their own, and many can be "
        "treated with antibiotics. Viruses are much smaller, are not cells, and can only multiply inside "
        "the cells of a host. Antibiotics do not work against viruses.",
        "A bacterium is a living single cell that reproduces by itself, and antibiotics can kill many "
        "bacteria. A virus is far smaller, is not a cell at all, and can only copy itself inside a "
        "host's cells. That is why antibiotics are useless against viral infections.",
        "Both can make you sick. Bacteria are bigger than viruses.",
        "My favourite football team won the league last season thanks to a great new striker and a solid defence.",
    ),
    (
        "Water a cactus about once every two weeks in spring and summer, and let the soil dry out "
        "completely between waterings. In winter, water it only once a month or less. Too much water "
        "makes the roots rot.",
        "During spring and summer, give your cactus water roughly every two weeks, and make sure the "
        "soil is fully dry before watering again. In winter, once a month or even less is enough. "
        "Overwatering causes root rot.",
        "Cacti do not need a lot of water because they live in the desert. Water it sometimes.",
        "You can reset your router by holding the small button on the back for thirty seconds until the lights blink.",
    ),
]


def _all_pairs() -> tuple[list[str], list[str]]:
    cands = [text for case in CASES for text in case[1:]]
    refs = [case[0] for case in CASES for _ in case[1:]]
    return cands, refs


@pytest.mark.parametrize("case", CASES, ids=["sky", "hiccups", "virus", "cactus"])
def test_paraphrase_beats_partial_beats_unrelated(scorer: BertScoreScorer, case: tuple[str, ...]) -> None:
    reference, paraphrase, partial, unrelated = case
    para, part, unrel = scorer.score([paraphrase, partial, unrelated], [reference] * 3)
    assert para >= 0.75
    assert unrel <= 0.35
    assert para > part + 0.05
    assert part > unrel + 0.15
    assert para - unrel >= 0.5


def test_identical_text_scores_one(scorer: BertScoreScorer) -> None:
    text = CASES[0][0]
    assert scorer.score([text], [text])[0] == pytest.approx(1.0, abs=1e-4)


def test_batched_equals_one_at_a_time(scorer: BertScoreScorer) -> None:
    cands, refs = _all_pairs()
    batched = scorer.score(cands, refs)  # 12 pairs: more than one model batch of 8
    single = [scorer.score([c], [r])[0] for c, r in zip(cands, refs, strict=True)]
    assert all(isinstance(x, float) for x in batched)
    assert batched == pytest.approx(single, abs=1e-4)


def test_blank_side_scores_zero_without_breaking_the_batch(scorer: BertScoreScorer) -> None:
    reference, paraphrase = CASES[1][0], CASES[1][1]
    scores = scorer.score(["", paraphrase, "  \n", paraphrase], [reference, reference, reference, ""])
    assert scores[0] == scores[2] == scores[3] == 0.0
    assert scores[1] == pytest.approx(scorer.score([paraphrase], [reference])[0], abs=1e-4)
    assert scorer.score([], []) == []
    assert scorer.score(["", " "], ["a", "b"]) == [0.0, 0.0]


def test_generic_answer_scores_low(scorer: BertScoreScorer) -> None:
    refs = [case[0] for case in CASES]
    assert max(scorer.score(["I don't know."] * len(refs), refs)) < 0.3


def test_long_text_is_truncated(scorer: BertScoreScorer) -> None:
    reference = CASES[2][0]
    long = CASES[2][1] + " " + "Unrelated padding sentence about nothing. " * 2000
    limit = scorer.settings.scorer_max_chars
    assert len(long) > 10 * limit
    assert scorer.score([long], [reference]) == pytest.approx(scorer.score([long[:limit]], [reference]), abs=1e-4)


def test_length_mismatch_raises(scorer: BertScoreScorer) -> None:
    with pytest.raises(ScoringError, match="1 candidates but 2 references"):
        scorer.score(["a"], ["a", "b"])


def test_identity(scorer: BertScoreScorer) -> None:
    ident = scorer.identity
    assert ident["name"] == "bertscore"
    assert ident["model"] == PACKAGED_MODEL_NAME
    assert Path(ident["model_path"], "config.json").is_file()
    assert ident["num_layers"] == "6"
    assert ident["idf"] == "False"
    assert ident["rescale_with_baseline"] == "False"
    for key in ("bert_score_version", "torch_version", "transformers_version"):
        assert ident[key] and ident[key][0].isdigit(), key
    assert "_L6_no-idf" in ident["bert_score_hash"]
    assert all(isinstance(v, str) for v in ident.values())


@pytest.mark.usefixtures("scorer")  # imports done: a second load takes a fraction of a second
def test_local_model_sets_offline_defaults_but_keeps_explicit_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    s = BertScoreScorer(ScorerSettings(scorer_device="cpu"))
    s.start()
    s.close()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"


@pytest.mark.usefixtures("scorer")
def test_loading_the_model_draws_no_progress_bar_of_transformers(capfd: pytest.CaptureFixture[str]) -> None:
    """transformers' "Loading weights" bar broke into `qaflow run`'s own progress bar."""
    import transformers

    transformers.utils.logging.enable_progress_bar()  # as a fresh process has it
    s = BertScoreScorer(ScorerSettings(scorer_device="cpu"))
    s.start()
    s.close()
    assert "Loading weights" not in capfd.readouterr().err


def test_factory_and_packaged_dir() -> None:
    assert isinstance(make_scorer(ScorerSettings(scorer="bertscore")), BertScoreScorer)
    directory = packaged_model_dir()
    assert directory is not None
    assert Path(directory, "model.safetensors").is_file()


def test_score_before_start_raises() -> None:
    s = BertScoreScorer(ScorerSettings())
    with pytest.raises(ScoringError, match="start"):
        s.score(["a"], ["a"])


def test_unknown_model_without_layer_fails_clearly() -> None:
    s = BertScoreScorer(ScorerSettings(scorer_model="example-org/unknown-model"))
    with pytest.raises(ScoringError, match="QAFLOW_SCORER_NUM_LAYERS"):
        s.start()


def test_missing_local_directory_fails_clearly() -> None:
    s = BertScoreScorer(ScorerSettings(scorer_model="/nonexistent/qaflow-model", scorer_num_layers=6))
    with pytest.raises(ScoringError, match="not a directory"):
        s.start()


def test_unloadable_local_directory_fails_clearly(tmp_path: Path) -> None:
    s = BertScoreScorer(ScorerSettings(scorer_model=str(tmp_path), scorer_num_layers=6, scorer_device="cpu"))
    with pytest.raises(ScoringError, match=r"could not load the BERTScore model.*QAFLOW_SCORER_MODEL"):
        s.start()


def test_hub_id_without_network_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never touch the network in tests
    s = BertScoreScorer(
        ScorerSettings(scorer_model="qaflow-test/no-such-model", scorer_num_layers=6, scorer_device="cpu")
    )
    with pytest.raises(ScoringError, match=r"could not load.*local directory"):
        s.start()
