"""A web app for a trained checkpoint: drop an image, see the top classes, the decision and the model card.

Needs the optional extra: ``pip install -e '.[app]'`` (Gradio). Listens on 127.0.0.1:7860 by default
(only this machine); ``--host 0.0.0.0`` opens it to the network. Uploads are only decoded (never
executed), are limited to ``--max-upload-mb`` and Pillow's pixel limit, and a bad one gets a message
on the page. ``--cam METHOD`` adds a class activation map overlay when the explain package is
installed. Example::

    python tools/app.py runs/RUN/checkpoints/best_*.safetensors --port 7860
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# tools/ holds profile.py, which would shadow the standard library's ``profile`` (cProfile imports it).
_TOOLS = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOOLS]
sys.path.insert(0, str(_TOOLS.parent))

from ignite_cv.utils.errors import UserError, exit_on_user_error  # noqa: E402
from ignite_cv.utils.options import OneLineErrorParser  # noqa: E402
from ignite_cv.utils.process_exit import end_process  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__.splitlines()[0], prog="tools/app.py")
    parser.add_argument("model", help="an ignite_cv .safetensors checkpoint")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--max-upload-mb", type=int, default=50, help="largest upload accepted (default: 50)")
    parser.add_argument(
        "--cam", default="", metavar="METHOD", help="show a CAM overlay (needs ignite_cv.explain)"
    )
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None, block: bool = True):
    """Parse, load the model, start the server (``block=False``: return the running app)."""
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536 or args.max_upload_mb < 1:
        raise UserError("--port must be 1..65535 and --max-upload-mb >= 1", "fix the flag")
    from ignite_cv.inference.web import launch, require_gradio

    require_gradio()  # before the model is loaded: the missing extra is the first thing to say
    from PIL import Image

    from ignite_cv.inference.loading import load_predictor

    predictor = load_predictor(args.model, device=args.device, max_pixels=Image.MAX_IMAGE_PIXELS)
    if args.cam:
        from ignite_cv.inference.cam import require_explain

        require_explain()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the model")
    print(f"serving {args.model} on http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    return launch(predictor, args.host, args.port, args.cam, args.max_upload_mb, block=block)


if __name__ == "__main__":
    main()
    end_process()
