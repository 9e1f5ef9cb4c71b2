"""tools/app.py: served on localhost, a request through gradio_client returns predict()'s probabilities."""

from __future__ import annotations

import importlib.util
import socket
import sys

import pytest

from ignite_cv import predict
from tests.recipe_utils import REPO

TOOL = REPO / "tools" / "app.py"


def _tool():
    spec = importlib.util.spec_from_file_location("ignite_cv_tool_app", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# gradio 6.31's queue calls pandas options that pandas 3 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword):Warning")
def test_the_app_answers_like_predict_and_shows_a_message_for_a_bad_upload(digits_run, digit_files, tmp_path):
    pytest.importorskip("gradio", reason="the app test needs the app extra: pip install -e '.[app]'")
    import httpx
    from gradio_client import Client, handle_file

    checkpoint = digits_run["best_checkpoint"]
    port = _free_port()
    app = _tool().main([checkpoint, "--port", str(port), "--device", "cpu"], block=False)
    try:
        assert app.server_name == "127.0.0.1"
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        image = digit_files[0] / "007.png"
        label, decision, message, probabilities, preview = client.predict(
            handle_file(str(image)), api_name="/predict"
        )
        expected = predict(checkpoint, str(image), device="cpu")[0]
        assert probabilities == expected.probabilities  # JSON floats: the same float64 values, exactly
        assert label["label"] == expected.label
        assert [(c["label"], c["confidence"]) for c in label["confidences"]] == expected.top(5)
        assert decision == f"**Prediction: {expected.label}** (probability {expected.probability:.4f})"
        assert message == "" and preview.endswith(".webp")

        (tmp_path / "notes.txt").write_text("not an image")
        label, decision, message, probabilities, preview = client.predict(
            handle_file(str(tmp_path / "notes.txt")), api_name="/predict"
        )
        assert message.startswith(
            "**Cannot classify notes.txt:** cannot read image notes.txt: not a readable"
        )
        assert probabilities is None and preview is None

        page = httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).json()  # the page's components
        texts = " ".join(str(c.get("props", {}).get("value", "")) for c in page["components"])
        test_accuracy = digits_run["test"]["accuracy"]
        assert "**training data**" in texts and f"accuracy {test_accuracy:.4f}" in texts
    finally:
        app.close()


def test_without_gradio_the_tool_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([str(tmp_path / "any.safetensors")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: the web app needs gradio; install it with: pip install -e '.[app]'"
