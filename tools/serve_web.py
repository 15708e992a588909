r"""Serve the web page that classifies typed text with an exported file, in
MediaPipe Tasks for web (examples/web/), on this machine only.

    (cd examples/web && npm ci)     # once: @mediapipe/tasks-text, wasm included
    python tools/serve_web.py --model=EXPORT/text_classifier_dynamic_int8.tflite
    # then open http://127.0.0.1:8000/

The page, the tasks library and its wasm files are served from the checkout
(no CDN), the model file at /model.tflite.
"""

import functools
import http.server
import os
import sys

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "examples", "web")
#: What the browser must be told: module scripts and streamed wasm refuse
#: other types.
TYPES = {".mjs": "text/javascript", ".js": "text/javascript",
         ".wasm": "application/wasm", ".tflite": "application/octet-stream",
         ".html": "text/html; charset=utf-8"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      **TYPES}

    def __init__(self, *args, model=None, **kwargs):
        self.model = model
        super().__init__(*args, **kwargs)

    def translate_path(self, path):
        if path.split("?", 1)[0] == "/model.tflite":
            return self.model
        return super().translate_path(path)

    def log_message(self, *args):  # Quiet: one line per request is noise.
        pass


def make_server(model, host="127.0.0.1", port=8000, web_dir=WEB_DIR):
    """A ``ThreadingHTTPServer`` (not started) serving ``web_dir`` and
    ``model`` as ``/model.tflite``; ``port=0`` picks a free port
    (``server.server_address``).

    Raises:
        FileNotFoundError: no model file, or the npm package not installed.
    """
    if not os.path.isfile(model):
        raise FileNotFoundError(f"No such model file: {model!r}.")
    bundle = os.path.join(web_dir, "node_modules", "@mediapipe",
                          "tasks-text", "wasm")
    if not os.path.isdir(bundle):
        raise FileNotFoundError(
            f"{bundle} is missing: run `npm ci` in {web_dir} first.")
    handler = functools.partial(_Handler, directory=web_dir,
                                model=os.path.abspath(model))
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="A .tflite file with MediaPipe metadata "
                        "(text_classifier_*.tflite from tools/export.py).")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if not 0 <= args.port < 65536:
        parser.error(f"--port={args.port} is not a port number")
    try:
        server = make_server(args.model, args.host, args.port)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    print(f"Serving {args.model} at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
