"""The embedding pipeline: batches by length, tokenized ahead on threads, vectors back in order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from refmatch.embed.pipeline import TokenRecipe, card_batch_size, embed_in_batches


def fake_model(log: list):
    """tokenize: each text's length; run: a 2-d vector of (length, batch number); both logged."""
    lock = threading.Lock()

    def tokenize(batch: list[str]) -> dict[str, np.ndarray]:
        with lock:
            log.append(("tokenize", threading.current_thread().name, len(batch)))
        return {"input_ids": np.array([[len(t)] for t in batch], dtype=np.int64)}

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with lock:
            log.append(("run", threading.current_thread().name, len(inputs["input_ids"])))
            number = sum(1 for entry in log if entry[0] == "run")
        ids = inputs["input_ids"][:, 0].astype(np.float32)
        return np.stack([ids, np.full_like(ids, number)], axis=1)

    return tokenize, run


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_vectors_come_back_in_the_texts_order_from_batches_sorted_by_length(workers):
    texts = ["a" * n for n in (3, 10, 1, 7, 7, 2, 9)]
    log: list = []
    tokenize, run = fake_model(log)
    vectors = embed_in_batches(texts, batch_size=3, tokenize=tokenize, run=run, gather=np.concatenate, workers=workers)
    assert vectors[:, 0].tolist() == [3, 10, 1, 7, 7, 2, 9]  # each text's own row
    assert vectors[:, 1].tolist() == [2, 1, 3, 1, 2, 2, 1]  # longest first: 10, 9, 7 | 7, 3, 2 | 1
    runs = [entry for entry in log if entry[0] == "run"]
    assert [n for _, _, n in runs] == [3, 3, 1] and {name for _, name, _ in runs} == {"MainThread"}
    tokenizers = {name for kind, name, _ in log if kind == "tokenize"}
    assert tokenizers == ({"MainThread"} if workers == 0 else {n for n in tokenizers if "tokenize" in n})


def test_tokenizing_runs_ahead_of_the_model_but_only_so_far():
    log: list = []
    tokenize, run = fake_model(log)
    embed_in_batches(["x"] * 40, batch_size=1, tokenize=tokenize, run=run, gather=np.concatenate, workers=2, ahead=3)
    first_run = next(i for i, entry in enumerate(log) if entry[0] == "run")
    assert first_run >= 1  # the first batch was tokenized before the model ran it
    for i, entry in enumerate(log):
        if entry[0] == "run":
            done = sum(1 for e in log[:i] if e[0] == "tokenize")
            started = sum(1 for e in log[:i] if e[0] == "run")
            assert done - started <= 2 * 3 + 1  # never more than workers * ahead waiting (+ the next)


def test_an_error_while_tokenizing_is_raised_here_and_nothing_more_runs():
    ran: list[int] = []

    def tokenize(batch: list[str]) -> dict[str, np.ndarray]:
        if "bad" in batch:
            raise ValueError("cannot tokenize 'bad'")
        return {"input_ids": np.zeros((len(batch), 1), dtype=np.int64)}

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        ran.append(len(inputs["input_ids"]))
        return np.zeros((len(inputs["input_ids"]), 2), dtype=np.float32)

    texts = ["longest text of all", "bad", "ok", "ok"]
    with pytest.raises(ValueError, match="cannot tokenize 'bad'"):
        embed_in_batches(texts, batch_size=1, tokenize=tokenize, run=run, gather=np.concatenate, workers=2)
    assert ran == [1]  # the longest ran; after 'bad' failed, nothing else did
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        embed_in_batches(texts, batch_size=0, tokenize=tokenize, run=run, gather=np.concatenate)


def test_the_recipe_cleans_and_tokenizes_as_the_model_expects():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[PAD]": 0, "[UNK]": 1, "hello": 2, "world": 3, "again": 4}
    recipe = TokenRecipe(("input_ids", "attention_mask"), max_tokens=2, pad_id=0, pad_token="[PAD]", lower_case=True)
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    recipe.configure(tokenizer)
    batch = recipe.tokenize(tokenizer, recipe.clean(["  Hello World again ", "HELLO"]))
    assert set(batch) == {"input_ids", "attention_mask"}  # only the model's inputs
    assert batch["input_ids"].tolist() == [[2, 3], [2, 0]]  # lower-cased, truncated to 2, padded
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert TokenRecipe.from_meta(recipe.meta()) == recipe


def test_a_model_without_a_fast_tokenizer_is_embedded_by_its_own_encode():
    from refmatch.embed.st import SentenceTransformerEncoder

    class SlowTokenizerModel:  # what sentence-transformers gives for a model with a Python-only tokenizer
        tokenizer = object()
        calls: list = []

        def encode(self, texts, **kwargs):
            self.calls.append((len(texts), kwargs["batch_size"]))
            return np.ones((len(texts), 4), dtype=np.float64)

    model = SlowTokenizerModel()
    encoder = SentenceTransformerEncoder(batch_size=7, pipeline=True)
    encoder._model = model
    vectors = encoder.encode(["a", "b", "c"])
    assert model.calls == [(3, 7)] and vectors.dtype == np.float32
    assert np.allclose(vectors, 0.5)  # normalised: four ones over a norm of two


def test_a_cards_batch_is_the_largest_power_of_two_that_fits_half_its_free_memory():
    mb = 2**20
    assert card_batch_size(1 * mb, 1200 * mb) == 512  # 600 MB of room: 512 fit, 1024 do not
    assert card_batch_size(1 * mb, 1024 * mb) == 512  # exactly fits
    assert card_batch_size(1 * mb, 1023 * mb) == 256
    assert card_batch_size(1000, 80 * 2**30) == 1024  # a large card: no more than 1024 a batch
    assert card_batch_size(1000, 80 * 2**30, most=4096) == 4096
    assert card_batch_size(10 * mb, 5 * mb) == 1  # too little even for one: one at a time, the smallest there is


class FakeCard:
    """torch.cuda's memory accounting for one card: a run holds ``per_text`` bytes a text at its peak."""

    def __init__(self, per_text: int, free: int) -> None:
        self.per_text, self.free = per_text, free
        self.allocated = self.peak = 100  # the model's weights
        self.calls: list[str] = []

    def install(self, monkeypatch, torch) -> None:
        for name in ("synchronize", "empty_cache"):
            monkeypatch.setattr(torch.cuda, name, lambda *a, name=name: self.calls.append(name))
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: self.peak)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (self.free, 80 * 2**30))
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: setattr(self, "peak", 100))

    def run(self, texts) -> np.ndarray:
        self.peak = max(self.peak, self.allocated + self.per_text * len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)


def test_on_a_card_an_automatic_batch_is_sized_from_one_run_of_the_longest_texts(monkeypatch):
    torch = pytest.importorskip("torch")
    from refmatch.embed.st import SIZING_BATCH, SentenceTransformerEncoder

    card = FakeCard(per_text=3 * 2**20, free=4 * 2**30)  # 3 MB a text, 4 GB free: 2 GB of room, 682 texts
    card.install(monkeypatch, torch)
    encoder = SentenceTransformerEncoder(device="cuda")
    assert (encoder.batch_size, encoder.texts_per_call) == (64, 1024 * 16)  # the largest it may be, before loading
    runs: list[tuple[int, int, bool]] = []

    def encode_with(model, texts):
        runs.append((len(texts), encoder.batch_size, all(t == texts[0] for t in texts)))
        return card.run(texts)

    monkeypatch.setattr(encoder, "_encode_with", encode_with)

    class Model:
        device = "cuda:0"
        max_seq_length = 256

    assert encoder._size_for_card(Model()) == 512
    assert runs == [(SIZING_BATCH, SIZING_BATCH, True)]  # one run of identical, longest-possible texts
    assert encoder.card == {"batch_size": 512, "per_text_mb": 3.0, "free_mb": 4096}
    assert card.calls[:2] == ["synchronize", "empty_cache"]  # measured from a settled card
    named = SentenceTransformerEncoder(device="cuda", batch_size=96)
    assert (named.batch_size, named.texts_per_call) == (96, 96 * 16)  # a size the settings name is kept


def test_a_card_out_of_memory_halves_the_batch_until_it_fits(monkeypatch):
    torch = pytest.importorskip("torch")
    from refmatch.domain.errors import ConfigError
    from refmatch.embed.st import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(batch_size=64, pipeline=True)
    tried: list[int] = []

    def encode_with(model, texts, fits=16):
        tried.append(encoder.batch_size)
        if encoder.batch_size > fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr(encoder, "_encode_with", encode_with)
    encoder._model = object()
    assert encoder.encode(["a", "b", "c"]).shape == (3, 4)
    assert tried == [64, 32, 16] and encoder.batch_size == 16  # the size that fitted stays
    assert encoder.card == {"batch_size": 16, "halved": 2}
    encoder.encode(["d"])
    assert tried[-1] == 16  # the next call starts where the last one fitted
    monkeypatch.setattr(encoder, "_encode_with", lambda model, texts: encode_with(model, texts, fits=0))
    with pytest.raises(ConfigError, match="has no memory for even one text: CUDA out of memory"):
        encoder.encode(["e"])
