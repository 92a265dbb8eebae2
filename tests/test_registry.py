import json

import numpy as np
import pytest

from mnist_core.models import AnnConfig, build_model, config_to_dict
from mnist_core.registry import ModelLoadError, ModelRegistry


def save_tiny(registry, name="tiny", kind="ann", accuracy=0.5):
    model = build_model(AnnConfig(hidden_units=(8,)))
    meta = {
        "kind": kind,
        "config": config_to_dict(AnnConfig(hidden_units=(8,))),
        "test_accuracy": accuracy,
        "history": {"batch": [], "epoch": []},
    }
    return model, registry.save(model, name, meta)


def test_round_trip_predicts_the_same(tmp_path):
    registry = ModelRegistry(tmp_path)
    model, entry = save_tiny(registry)
    loaded = registry.load(registry.get(entry.name))
    x = np.random.rand(4, 28, 28, 1).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), rtol=1e-5)
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["params"] == model.count_params() and meta["kind"] == "ann"
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name]  # atomic: no leftovers


def test_models_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert ModelRegistry().root == tmp_path / "elsewhere"


def test_names_never_overwrite(tmp_path):
    registry = ModelRegistry(tmp_path)
    first = save_tiny(registry, "same")[1]
    second = save_tiny(registry, "same")[1]
    assert (first.name, second.name) == ("same", "same-2")
    assert len(registry.entries()) == 2


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "/abs/path", "..", "a/b\\c", " .hidden"])
def test_hostile_names_stay_inside_the_registry(tmp_path, hostile):
    registry = ModelRegistry(tmp_path / "models")
    if hostile == "..":
        with pytest.raises(ValueError, match="no usable characters"):
            registry.unique_name(hostile)
        return
    _, entry = save_tiny(registry, hostile)
    assert entry.model_path.parent == tmp_path / "models"
    assert "/" not in entry.name and "\\" not in entry.name and not entry.name.startswith(".")


def test_corrupt_entries_are_skipped_with_a_warning(tmp_path):
    registry = ModelRegistry(tmp_path)
    save_tiny(registry, "good")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "orphan.json").write_text(
        json.dumps(
            {"kind": "ann", "config": {}, "test_accuracy": 0.9, "created": "2026-01-01T00:00:00"}
        )
    )
    (tmp_path / "partial.json").write_text(json.dumps({"kind": "ann"}))
    (tmp_path / "partial.keras").write_bytes(b"x")
    with pytest.warns(UserWarning) as caught:
        entries = registry.entries()
    assert [e.name for e in entries] == ["good"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.json" in messages and "orphan.keras is missing" in messages
    assert "lacks" in messages


def test_corrupt_model_file_raises_a_clear_error(tmp_path):
    registry = ModelRegistry(tmp_path)
    _, entry = save_tiny(registry, "damaged")
    entry.model_path.write_bytes(entry.model_path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match=r"damaged\.keras cannot be loaded"):
        registry.load(registry.get("damaged"))


def test_newest_and_kind_filter(tmp_path):
    registry = ModelRegistry(tmp_path)
    save_tiny(registry, "a1", kind="ann")
    meta = json.loads((tmp_path / "a1.json").read_text())
    (tmp_path / "a1.json").write_text(json.dumps({**meta, "created": "2000-01-01T00:00:00+00:00"}))
    save_tiny(registry, "c1", kind="cnn")
    save_tiny(registry, "a2", kind="ann")
    assert registry.newest("ann").name == "a2"
    assert [e.name for e in registry.entries("cnn")] == ["c1"]
    assert registry.newest("xyz") is None


def test_models_saved_within_a_second_list_in_the_order_they_were_saved(tmp_path):
    """An experiment saves several small models a second: its results follow its order."""
    registry = ModelRegistry(tmp_path)
    names = [save_tiny(registry, f"neurons-{n}")[1].name for n in (32, 64, 256, 128, 512)]
    old = tmp_path / "neurons-older.json"  # saved by a version that wrote whole seconds
    meta = json.loads((tmp_path / "neurons-32.json").read_text())
    old.write_text(json.dumps({**meta, "created": meta["created"][:19] + "+00:00"}))
    (tmp_path / "neurons-older.keras").write_bytes((tmp_path / "neurons-32.keras").read_bytes())
    listed = [entry.name for entry in registry.entries()]
    assert listed[:5] == names[::-1] and listed[5] == "neurons-older"
