"""The web app: drop an image, see the top classes, the decision and (when available) a CAM overlay.

Built with Gradio (an optional extra: ``pip install -e '.[app]'``). The upload is a plain file
(``gr.File``, not ``gr.Image``, so that Gradio never decodes it itself): :func:`classify_upload`
reads it with the same code as ``tools/predict.py`` and ``predict()`` (:meth:`Predictor.predict_file`),
so the three give the same probabilities for the same file, bit for bit. Nothing in an upload is
executed: it is only decoded by Pillow, after two limits — the upload size (Gradio's
``max_file_size``, default :data:`MAX_UPLOAD_MB`) and the pixel count (Pillow's
``MAX_IMAGE_PIXELS``, above which an upload is refused rather than decoded). A file that is not a
readable image, too large or too many pixels gives a message on the page, never a crash.

The server listens on 127.0.0.1 unless told otherwise; Gradio's usage analytics are switched off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from ignite_cv.utils.errors import UserError

#: Uploads larger than this are refused by the server (Gradio's max_file_size), in MB.
MAX_UPLOAD_MB = 50
#: The preview of the upload is shrunk to fit this many pixels on each side.
PREVIEW_SIDE = 384
#: Classes shown as bars (all probabilities are in the JSON below them).
TOP_CLASSES = 5
INSTALL_HINT = "the web app needs gradio; install it with: pip install -e '.[app]'"


def require_gradio() -> Any:
    """The gradio module, or a UserError with the install command."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return gradio


def classify_upload(predictor: Any, path: str | None, cam_method: str = "") -> dict[str, Any]:
    """The app's answer for one uploaded file: ``{"message", "label", "probabilities", "decision",
    "preview", "cam"}``. ``label`` is ``{class: probability}`` of the top classes (empty on a
    message); ``preview`` and ``cam`` are PIL images or None. Never raises for a bad upload."""
    from ignite_cv.data.folder import UnreadableImage

    answer: dict[str, Any] = {
        "message": "",
        "label": {},
        "probabilities": {},
        "decision": "",
        "preview": None,
        "cam": None,
    }
    if not path:
        answer["message"] = "Upload or drop an image to classify it."
        return answer
    name = Path(path).name
    try:
        prediction = predictor.predict_file(path, source=name)
        converted = predictor.preprocessing.open_file(path)
    except (UserError, UnreadableImage) as err:
        answer["message"] = f"**Cannot classify {name}:** {err}"
        return answer
    answer["probabilities"] = prediction.probabilities
    answer["label"] = dict(prediction.top(TOP_CLASSES))
    answer["decision"] = decision_text(predictor, prediction)
    preview = converted.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    answer["preview"] = preview
    if cam_method:
        answer["cam"], note = _cam(predictor, converted, prediction.label_index, cam_method, preview.size)
        if note:
            answer["message"] = note
    return answer


def decision_text(predictor: Any, prediction: Any) -> str:
    rule = predictor.rule
    if not rule.binary:
        return f"**Prediction: {prediction.label}** (probability {prediction.probability:.4f})"
    positive = rule.positive_class
    p = prediction.probabilities[positive]
    where = "stored in the checkpoint" if rule.stored else "default"
    sign = "≥" if prediction.label == positive else "<"
    return (
        f"**Decision: {prediction.label}** — P({positive}) = {p:.4f} {sign} threshold "
        f"{rule.threshold:g} ({where})"
    )


def _cam(predictor: Any, converted: Image.Image, target: int, method: str, size: tuple[int, int]):
    import torch

    from ignite_cv.inference.cam import overlay_image, overlays

    try:
        tensor = predictor.preprocessing.tensor(converted).unsqueeze(0)
        overlay = overlays(predictor, tensor, torch.tensor([target]), method)[0]
    except UserError as err:
        return None, f"No CAM overlay: {err}"
    return overlay_image(overlay).resize(size, Image.Resampling.NEAREST), ""


def build_app(predictor: Any, cam_method: str = "") -> Any:
    """The Gradio Blocks of the app (not launched). ``cam_method`` empty: no overlay panel."""
    gr = require_gradio()
    info = predictor.info()
    top = min(TOP_CLASSES, len(predictor.class_names))

    def run(path: str | None):
        answer = classify_upload(predictor, path, cam_method)
        outputs = [
            answer["label"] or None,
            answer["decision"],
            answer["message"],
            answer["probabilities"] or None,
            answer["preview"],
        ]
        return (*outputs, answer["cam"]) if cam_method else tuple(outputs)

    with gr.Blocks(title=f"ignite_cv · {info.arch}", analytics_enabled=False) as app:
        gr.Markdown(
            f"# {info.arch}: {', '.join(info.class_names[:8])}{' …' if len(info.class_names) > 8 else ''}"
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image (JPEG, PNG, BMP, GIF, WebP, TIFF)", type="filepath")
                preview = gr.Image(label="Your image", type="pil", interactive=False, height=PREVIEW_SIDE)
            with gr.Column(scale=1):
                message = gr.Markdown("Upload or drop an image to classify it.")
                decision = gr.Markdown()
                label = gr.Label(num_top_classes=top, label="Top classes")
                cam = None
                if cam_method:
                    cam = gr.Image(
                        label=f"Where the model looked ({cam_method})", type="pil", interactive=False
                    )
                with gr.Accordion("All class probabilities", open=False):
                    probabilities = gr.JSON(label="probabilities")
        with gr.Accordion("Model card", open=True):
            gr.Markdown(info.markdown())
        outputs = [label, decision, message, probabilities, preview] + ([cam] if cam is not None else [])
        upload.change(run, inputs=upload, outputs=outputs, api_name="predict")
    return app


def launch(
    predictor: Any,
    host: str = "127.0.0.1",
    port: int = 7860,
    cam_method: str = "",
    max_upload_mb: int = MAX_UPLOAD_MB,
    block: bool = True,
) -> Any:
    """Build and start the app; returns the Blocks (``block=False``: the server runs in a thread,
    stop it with ``.close()``)."""
    gr = require_gradio()
    app = build_app(predictor, cam_method)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["monospace"])
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=f"{max_upload_mb}mb",
        prevent_thread_lock=not block,
        show_error=True,
        quiet=not block,
        theme=theme,
        footer_links=["api"],
        ssr_mode=False,
        mcp_server=False,
    )
    return app
