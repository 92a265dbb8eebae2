"""Exported notebooks and scripts run, on small data, and build the app's networks: the CNN's
notebook executed by Jupyter's own client, the ANN's script by plain ``python``, an
experiment's notebook in looped form; and bad exports refused, nothing written."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from mnist_core.cli import main
from mnist_core.experiments import PRESETS, prepared
from mnist_core.jobs import default_job
from mnist_core.models import build_model
from mnist_core.network_code import saved_job
from mnist_core.notebooks import (
    experiment_cells,
    job_export,
    model_cells,
    model_export,
    notebook_text,
)
from mnist_core.registry import ModelRegistry, sanitize_name
from mnist_core.training import split_data

nbclient = pytest.importorskip("nbclient")


@pytest.fixture(scope="module")
def small_npz(small_mnist, tmp_path_factory):
    """The suite's few hundred real digits as an ``mnist.npz``: what ``MNIST_DATA`` names."""
    path = tmp_path_factory.mktemp("notebook-data") / "mnist.npz"
    np.savez(
        path,
        x_train=small_mnist.x_train,
        y_train=small_mnist.y_train,
        x_test=small_mnist.x_test,
        y_test=small_mnist.y_test,
    )
    return path


def execute(notebook_path, monkeypatch, small_npz) -> nbformat.NotebookNode:
    """Run every cell as Jupyter would, in the notebook's folder, on the small data."""
    monkeypatch.setenv("MNIST_DATA", str(small_npz))
    # Importing Streamlit (the AppTest modules) sets MPLBACKEND=Agg for this process, which
    # the kernel would inherit in place of Jupyter's inline figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(notebook_path, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(notebook_path.parent)}}
    ).execute()
    return notebook


def last_line(notebook: nbformat.NotebookNode) -> dict:
    output = notebook.cells[-1].outputs[-1]
    return json.loads(output["text"].strip().splitlines()[-1])


def layer_names(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def assert_same_network(exported, app) -> None:
    assert layer_names(exported) == layer_names(app)
    assert [layer.get_config() | {"name": ""} for layer in exported.layers] == [
        layer.get_config() | {"name": ""} for layer in app.layers
    ]
    assert exported.count_params() == app.count_params()


def test_the_notebook_chooses_the_app_s_training_digits(small_mnist):
    job = default_job("ann", train_size=500, validation_size=200, seed=3)
    code = "import numpy as np\n" + "".join(
        cell.text
        for cell in model_cells(job_export(job))
        if "def with_styles" in cell.text or "def training_digits" in cell.text
    )
    namespace = {
        "SEED": 3,
        "VALIDATION_IMAGES": 200,
        "TRAIN_IMAGES": 500,
        "EUROPEAN_SHARE": job.training.styles,
        "x_train_all": small_mnist.x_train,
        "y_train_all": small_mnist.y_train,
    }
    exec(compile(code, "<the notebook's split>", "exec"), namespace)  # noqa: S102
    (x_train, y_train), (x_val, y_val) = namespace["training_digits"](500, job.training.styles)
    (app_x, app_y), (app_x_val, app_y_val) = split_data(small_mnist, job.training)
    for exported, app in ((x_train, app_x), (y_train, app_y), (x_val, app_x_val)):
        np.testing.assert_array_equal(exported, app)
    np.testing.assert_array_equal(y_val, app_y_val)


def test_the_cnn_s_notebook_runs_and_trains_the_app_s_network(
    trained_models, tmp_path, monkeypatch, small_npz
):
    registry = ModelRegistry(trained_models)
    entry = registry.newest("cnn")
    target = tmp_path / "cnn.ipynb"
    assert main(["export", entry.name, "--notebook", str(target), "--models-dir",
                 str(trained_models)]) == 0  # fmt: skip
    notebook = execute(target, monkeypatch, small_npz)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    figures = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get(
        "data", {})]  # fmt: skip
    assert len(figures) == 3  # the curves, the confusion matrix, the misread digits
    result = last_line(notebook)
    exported = load_exported(tmp_path / f"{entry.name}.keras")
    assert_same_network(exported, registry.load(entry))
    assert result["params"] == entry.meta["params"] == exported.count_params()
    assert 0.5 < result["test_accuracy"] <= 1  # it learned, on a thousand digits


def load_exported(path):
    import keras

    return keras.saving.load_model(path)


def test_the_ann_s_script_runs_with_plain_python(trained_models, tmp_path, small_npz):
    entry = ModelRegistry(trained_models).newest("ann")
    script = tmp_path / "ann.py"
    assert main(["export", entry.name, "--script", str(script), "--models-dir",
                 str(trained_models)]) == 0  # fmt: skip
    run = subprocess.run(
        [sys.executable, script.name],
        cwd=tmp_path,
        env={"MNIST_DATA": str(small_npz), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["params"] == entry.meta["params"]
    assert_same_network(
        load_exported(tmp_path / f"{entry.name}.keras"), ModelRegistry(trained_models).load(entry)
    )
    assert {path.name for path in tmp_path.glob("*.png")} == {
        f"{entry.name}-{figure}.png" for figure in ("curves", "confusion", "misread")
    }


def test_an_experiment_s_notebook_trains_each_configuration_in_a_loop(
    tmp_path, monkeypatch, small_npz
):
    jobs = prepared([default_job("cnn", name="cnn")], "a-test", epochs=1, train_size=600)
    budgeted = default_job(
        "ann", name='sgd "mse"', optimizer="sgd", loss="mse", output_activation="sigmoid",
        hidden_units=(32,), learning_rate=0.05, time_budget=2.0, epochs=2, train_size=600,
    )  # fmt: skip
    jobs.append(budgeted)
    target = tmp_path / "experiment.ipynb"
    target.write_text(notebook_text(experiment_cells("a-test", "ANN or CNN?", jobs)))
    notebook = execute(target, monkeypatch, small_npz)
    results = last_line(notebook)["results"]
    assert [r["name"] for r in results] == ["cnn", 'sgd "mse"']
    for result, job in zip(results, jobs, strict=True):
        assert result["params"] == build_model(job.model).count_params()
        assert 0 <= result["test_accuracy"] <= 1


# --- bad input: a clear message, nothing written --------------------------------------------


def export(capsys, *args) -> tuple[int, str, str]:
    code = main(["export", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_models_experiments_and_targets_are_refused(trained_models, tmp_path, capsys):
    models = ["--models-dir", str(trained_models)]
    target = str(tmp_path / "x.ipynb")
    code, _, err = export(capsys, "no-such-model", "--notebook", target, *models)
    assert code == 2 and "no model named 'no-such-model'" in err
    code, _, err = export(capsys, "--experiment", "no-such", "--notebook", target, *models)
    assert code == 2 and "no experiment 'no-such'" in err and "ann-vs-cnn" in err
    entry = ModelRegistry(trained_models).newest("ann")
    code, _, err = export(capsys, entry.name, *models)
    assert code == 2 and "--notebook FILE.ipynb" in err
    code, _, err = export(capsys, entry.name, "--notebook", str(tmp_path / "x.txt"), *models)
    assert code == 2 and "a notebook is written to a .ipynb file" in err
    kept = tmp_path / "mine.ipynb"
    kept.write_text("a student's own notebook")
    code, _, err = export(capsys, entry.name, "--notebook", str(kept), *models)
    assert code == 2 and "exists already" in err
    assert kept.read_text() == "a student's own notebook"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.ipynb"]


def test_a_preset_exports_by_its_name(tmp_path, capsys):
    target = tmp_path / "neurons.ipynb"
    code, out, _ = export(capsys, "--experiment", "neurons", "--notebook", str(target))
    assert code == 0 and json.loads(out.splitlines()[-1])["notebook"] == str(target)
    notebook = nbformat.read(target, as_version=4)
    configurations = next(c.source for c in notebook.cells if "CONFIGURATIONS = {" in c.source)
    for job in PRESETS["neurons"].jobs:
        assert f'"{job.name}": {{' in configurations
        assert f"layers.Dense({job.model.hidden_units[0]}, activation=" in configurations


def test_an_uploaded_model_exports_its_architecture_and_says_the_training_is_unknown(
    trained_models, small_mnist, tmp_path, capsys
):
    registry = ModelRegistry(tmp_path / "models")
    trained = ModelRegistry(trained_models).newest("cnn")
    uploaded = registry.import_model(trained.model_path.read_bytes(), "from-a-file", small_mnist)
    target = tmp_path / "uploaded.ipynb"
    code, out, err = export(
        capsys, uploaded.name, "--notebook", str(target), "--models-dir", str(registry.root)
    )
    assert code == 0 and "How it was trained is unknown" in err
    assert "trained here" in json.loads(out.splitlines()[-1])["notes"][0]
    notebook = nbformat.read(target, as_version=4)
    assert "How it was trained is unknown" in notebook.cells[0].source
    build = next(c.source for c in notebook.cells if "ARCHITECTURE = " in c.source)
    namespace: dict = {}
    code = "import json, keras\nSEED = 0\n" + build.replace("model.summary()", "")
    exec(code, namespace)  # noqa: S102
    assert_same_network(namespace["model"], registry.load(uploaded))


def test_settings_this_version_cannot_read_fall_back_to_the_architecture(
    trained_models, tmp_path, capsys
):
    import shutil

    models = shutil.copytree(trained_models, tmp_path / "models")
    entry = ModelRegistry(models).newest("ann")
    meta_path = models / f"{entry.name}.json"
    meta = json.loads(meta_path.read_text())
    meta["config"] = {"kind": "rnn"}
    meta_path.write_text(json.dumps(meta))
    code, _, err = export(
        capsys, entry.name, "--script", str(tmp_path / "a.py"), "--models-dir", str(models)
    )
    assert code == 0 and "a version of the app this one cannot read" in err
    assert "ARCHITECTURE = " in (tmp_path / "a.py").read_text()


def test_a_name_with_quotes_markdown_or_code_stays_text():
    name = 'x"); __import__("os").system("touch pwned") #<script>**b**'
    jobs = [default_job("ann", name=name), default_job("ann", name=name)]
    cells = experiment_cells(name + "-tag", "<b>why</b>", jobs)
    notebook = nbformat.reads(notebook_text(cells), as_version=4)
    nbformat.validate(notebook)
    table = next(c.source for c in notebook.cells if "CONFIGURATIONS = {" in c.source)
    keys = [key.value for key in ast.parse(table).body[0].value.keys]
    assert keys == [name, f"{name}-2"]  # one configuration each, the name as written
    for cell in notebook.cells:
        if cell.cell_type == "code":
            ast.parse(cell.source)  # every cell is Python
        else:
            assert "<script>" not in cell.source and "<b>" not in cell.source
    single = model_cells(job_export(default_job("cnn", name=name)))
    settings = next(c.text for c in single if c.text.startswith("import json"))
    assigned = {
        node.targets[0].id: node.value
        for node in ast.parse(settings).body
        if isinstance(node, ast.Assign)
    }
    assert assigned["NAME"].value == sanitize_name(name)  # the file it saves: the app's name
    for cell in single:
        if not cell.markdown:
            ast.parse(cell.text)


def test_a_fine_tuned_model_exports_its_parent_s_training_and_says_why(trained_models, tmp_path):
    import shutil

    models = shutil.copytree(trained_models, tmp_path / "models")
    registry = ModelRegistry(models)
    parent = registry.newest("ann")
    child = registry.save(
        registry.load(parent),
        "tuned",
        parent.meta | {"parent": parent.name, "drawings": {"set": "class-3b"}},
    )
    exported = model_export(child, registry)
    assert exported.job.model == saved_job(parent.meta).model
    assert exported.architecture is None and exported.name == "tuned"
    assert "fine-tuned from the model" in exported.notes[0] and "class-3b" in exported.notes[0]
    registry.delete(parent.name)
    orphan = model_export(registry.get("tuned"), registry)
    assert orphan.architecture is not None and "no longer saved" in orphan.notes[0]
    learning = job_export(default_job("ann", drawings="class-3b"))  # the Train page's
    assert "class-3b" in learning.notes[0] and "MNIST alone" in learning.notes[0]


def test_a_run_of_an_experiment_exports_its_saved_models_in_the_order_trained(
    trained_models, tmp_path, capsys
):
    import shutil

    models = shutil.copytree(trained_models, tmp_path / "models")
    tag = "ann-vs-cnn-20261203-101010"
    entries = list(reversed(ModelRegistry(models).entries()))  # oldest first
    for entry in entries:
        meta_path = models / f"{entry.name}.json"
        meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | {"experiment": tag}))
    target = tmp_path / "run.ipynb"
    code, _, _ = export(capsys, "--experiment", tag, "--notebook", str(target), "--models-dir",
                        str(models))  # fmt: skip
    assert code == 0
    notebook = nbformat.read(target, as_version=4)
    assert PRESETS["ann-vs-cnn"].question in notebook.cells[0].source
    table = next(c.source for c in notebook.cells if "CONFIGURATIONS = {" in c.source)
    keys = [key.value for key in ast.parse(table).body[0].value.keys]
    assert keys == [entry.name for entry in entries]


def test_the_same_model_exports_the_same_notebook_text():
    """A page's rerun must keep its download button's file: same cells, same text."""
    cells = model_cells(job_export(default_job("cnn", name="twice")))
    assert notebook_text(cells) == notebook_text(cells)
