"""Training, bundles and the train/evaluate/suggest commands: train -> save -> load -> suggest."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata
from arttag.model.bundle import load_tagger, open_tagger, read_manifest
from arttag.model.tagger import SuggestOptions
from arttag_cli.main import main

ART = ArtworkMetadata(title="The Thames at Richmond", artists=["Joseph Mallord William Turner"],
                      medium="Graphite on paper", group_title="Richmond Sketchbook")


def test_sample_round_trip(hashing_bundle_dir):
    manifest = read_manifest(hashing_bundle_dir)
    assert manifest["encoder"]["name"] == "hashing-256"
    assert {"knn", "tfidf", "tfidf_artist", "linear", "semantic", "group", "artist", "accession", "mention"} == set(manifest["scorers"])
    assert manifest["training"]["reranker"]["trained"] is True
    a = load_tagger(hashing_bundle_dir)  # the bundle names its hashing encoder
    b = load_tagger(hashing_bundle_dir, HashingEncoder())
    assert a.model_version == b.model_version == manifest["model_version"]
    [sa], [sb] = a.suggest([ART]), b.suggest([ART])
    assert [s.tag_id for s in sa] == [s.tag_id for s in sb] and len(sa) == 10
    assert all(s.explanation.contributions for s in sa)
    assert len(a.vocabulary) == manifest["vocabulary_size"]
    assert a.suggest([ART], SuggestOptions(limit=3))[0] == sa[:3]


def test_bundle_refuses_another_encoder_and_a_missing_folder(hashing_bundle_dir, tmp_path):
    with pytest.raises(ModelError, match="trained with encoder"):
        load_tagger(hashing_bundle_dir, HashingEncoder(dim=64))
    with pytest.raises(ModelError, match="no model bundle"):
        load_tagger(tmp_path / "nothing")


def test_open_tagger_serves_with_the_encoder_it_is_given_and_refuses_a_bundle_trained_with_another(
        hashing_bundle_dir):
    held = HashingEncoder()  # hashing-256, the bundle's
    assert open_tagger(hashing_bundle_dir, encoder=held).encoder is held
    with pytest.raises(ModelError, match="trained with encoder"):
        open_tagger(hashing_bundle_dir, encoder=HashingEncoder(dim=64))
    # ``reuse`` only offers an encoder: another one is left aside for the bundle's own
    offered = HashingEncoder(dim=64)
    reloaded = open_tagger(hashing_bundle_dir, reuse=offered)
    assert reloaded.encoder is not offered and reloaded.encoder.name == "hashing-256"


def test_bundle_loads_and_suggests_without_torch(hashing_bundle_dir):
    code = (
        "import sys\n"
        "from arttag.model.bundle import load_tagger\n"
        "from arttag.events import ArtworkMetadata\n"
        f"t = load_tagger({str(hashing_bundle_dir)!r})\n"
        "assert t.suggest([ArtworkMetadata(title='Hill')])[0]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(scope="module")
def cli_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    params = root / "params.json"
    params.write_text(json.dumps({"reranker": {"max_iter": 40}}))
    return root, catalogue, params


def test_cli_train_evaluate_suggest(cli_bundle, capsys, monkeypatch):
    root, catalogue, params = cli_bundle
    out = root / "bundle"
    assert main(["train", str(catalogue), "--out", str(out), "--encoder", "hashing", "--params", str(params),
                 "--model-version", "test-1", "--embedding-cache", str(root / "emb"),
                 "--json", str(root / "train-figures.json")]) == 0
    printed = capsys.readouterr().out
    assert "bundle test-1 written" in printed and "4 bad row(s) skipped" in printed and "line 245" in printed
    assert read_manifest(out)["model_version"] == "test-1"
    assert (root / "emb" / "hashing-256.npz").exists()
    assert json.loads((root / "train-figures.json").read_text())["headline"]["f1_at_5"] > 0

    figures = root / "quality.json"
    assert main(["evaluate", str(catalogue), "--bundle", str(out), "--json", str(figures),
                 "--embedding-cache", str(root / "emb")]) == 0
    printed = capsys.readouterr().out
    assert "ensemble" in printed and "novel text" in printed and "ECE" in printed
    result = json.loads(figures.read_text())
    assert {"f1_at_5", "ndcg_at_10", "p_at_1", "unseen_tag_recall_at_10", "best_single_scorer_f1_at_5",
            "novel_text_f1_at_5", "novel_text_ndcg_at_10"} <= set(result["headline"])
    assert result["model_version"] == "test-1" and result["machine"]["cpus"]

    artwork = {"title": "Fishing Boats in Genoa Harbour", "artists": ["Joseph Mallord William Turner"],
               "tags": [{"id": "1", "label": "harbour"}]}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(artwork)))
    assert main(["suggest", "--bundle", str(out), "--limit", "3", "--format", "table", "--explain", "full"]) == 0
    printed = capsys.readouterr().out
    assert "harbour" in printed and "[already assigned]" in printed and "similar artwork" in printed
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(artwork)))
    assert main(["suggest", "--bundle", str(out), "--json", "--only-new"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    suggestions = record["suggestions"]
    assert suggestions and all(s["tag_id"] != "1" for s in suggestions)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"artists": []}'))
    assert main(["suggest", "--bundle", str(out)]) == 1
    assert "title" in capsys.readouterr().err


def test_cli_train_rejects_bad_params(cli_bundle, capsys):
    root, catalogue, _ = cli_bundle
    bad = root / "bad.json"
    bad.write_text(json.dumps({"scorers": {"knn": {"neighbours": -1}}}))
    assert main(["train", str(catalogue), "--out", str(root / "b2"), "--encoder", "hashing",
                 "--params", str(bad)]) == 2
    assert "invalid training parameters" in capsys.readouterr().err


def test_train_and_load_with_the_tiny_onnx_encoder(tiny_mpnet_dir, tiny_onnx_dir, tmp_path):
    from arttag.encoders.onnx import OnnxEncoder
    from arttag.model.training import train_bundle
    from arttag.settings import EncoderSettings

    catalogue = write_synthetic_catalogue(tmp_path / "cat.jsonl.gz", per_theme=25)
    encoder = OnnxEncoder(tiny_onnx_dir, "int8")
    manifest = train_bundle(catalogue, tmp_path / "bundle", encoder,
                            {"evaluate": False, "reranker": {"max_iter": 30}}, cache_dir=tmp_path / "emb")
    assert manifest["encoder"]["name"] == encoder.name and manifest["encoder"]["manifest"]["model_name"]
    tagger = load_tagger(tmp_path / "bundle", EncoderSettings(model_dir=tiny_mpnet_dir, variant="int8"))
    [suggestions] = tagger.suggest([ArtworkMetadata(title="Fishing Boats in Genoa Harbour")])
    assert suggestions and all(s.explanation.contributions for s in suggestions)
    assert tagger.search_tags_semantic("harbour", 3)


def test_embedding_cache_is_reused_and_never_truncated(tmp_path):
    import numpy as np
    from arttag.model.training import embed_texts

    class Counting(HashingEncoder):
        calls = 0

        def encode(self, texts):
            Counting.calls += len(texts)
            return super().encode(texts)

    many = [f"text {i}" for i in range(300)]
    first = embed_texts(Counting(), many, tmp_path)
    assert Counting.calls == 300
    again = embed_texts(Counting(), many[:5] + ["new one"], tmp_path)
    assert Counting.calls == 301  # only the new text was encoded
    np.testing.assert_allclose(again[:5], first[:5])
    with np.load(tmp_path / "hashing-256.npz") as data:
        assert len(data["keys"]) == 301


def test_embedding_cache_of_another_model_export_is_not_used(tmp_path):
    from types import SimpleNamespace

    import numpy as np
    from arttag.model.training import embed_texts

    class Exported(HashingEncoder):
        def __init__(self, sha):
            super().__init__()
            self.variant = "int8"
            self.manifest = SimpleNamespace(variant=lambda name: SimpleNamespace(sha256=sha))
            self.calls = 0

        def encode(self, texts):
            self.calls += len(texts)
            return super().encode(texts)

    first = Exported("aaa")
    embed_texts(first, ["a", "b"], tmp_path)
    same = Exported("aaa")
    embed_texts(same, ["a", "b"], tmp_path)
    assert same.calls == 0
    other = Exported("bbb")  # re-exported model: every vector changes
    embed_texts(other, ["a", "b"], tmp_path)
    assert other.calls == 2
    with np.load(tmp_path / "hashing-256.npz") as data:
        assert len(data["keys"]) == 2
