"""The web page (examples/web/) runs an exported file in MediaPipe Tasks for
web, in headless Chromium, and labels texts as MediaPipe's Python task does.

Needs Debian's ``chromium`` and ``chromium-driver``, the ``selenium``
package and ``npm ci`` in examples/web (see the README); skipped where one
is missing, unless ``TRIMZOO_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

import importlib.util
import os
import shutil
import tempfile
import threading

import numpy as np
import pytest

from helpers import synthetic_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(ROOT, "examples", "web")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing():
    if not os.path.exists(CHROMIUM):
        return "no chromium (apt-get install chromium chromium-driver)"
    if not os.path.exists(DRIVER):
        return "no chromedriver (apt-get install chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "no selenium (pip install -e '.[test]')"
    if not os.path.isdir(os.path.join(WEB, "node_modules", "@mediapipe",
                                      "tasks-text", "wasm")):
        return "no @mediapipe/tasks-text (cd examples/web && npm ci)"
    return None


def _skip_or_fail():
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("TRIMZOO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TRIMZOO_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"the browser test needs {reason}")


def _serve(model):
    spec = importlib.util.spec_from_file_location(
        "serve_web", os.path.join(ROOT, "tools", "serve_web.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.make_server(model, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _browser(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.mark.slow
def test_page_labels_equal_the_python_task(tmp_path):
    _skip_or_fail()
    import keras
    from selenium.webdriver.support.ui import WebDriverWait

    import trimzoo
    from trimzoo.export import export_model
    from trimzoo.export.app_file import MediaPipeRunner
    from trimzoo.models import BertWordPieceTokenizer

    from test_app_file import DIFFERENT, LABELS, PLAIN, VOCAB

    keras.utils.set_random_seed(7)
    backbone = trimzoo.models.bert_tiny(
        vocabulary_size=len(VOCAB), num_layers=1, hidden_dim=16,
        num_heads=2, intermediate_dim=32, max_sequence_length=64)
    model = trimzoo.models.TrimzooClassifier(backbone, num_classes=2,
                                             label_names=LABELS)
    texts = PLAIN + DIFFERENT + synthetic_lines(30, seed=3)
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(texts) + "\n", encoding="utf-8")
    export_model(model, str(tmp_path / "export"), formats="tflite",
                 quantize="dynamic", seq_len=32,
                 tokenizer=BertWordPieceTokenizer(VOCAB), data=str(data))
    path = str(tmp_path / "export" / "text_classifier_dynamic_int8.tflite")
    runner = MediaPipeRunner(path, "classifier")
    try:
        expected = runner(texts)
    finally:
        runner.close()

    server = _serve(path)
    profile = tempfile.mkdtemp(prefix="trimzoo_chromium_")
    driver = _browser(profile)
    try:
        host, port = server.server_address[:2]
        driver.get(f"http://{host}:{port}/?model=model.tflite")
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return window.modelReady === true || !!window.modelError"))
        assert driver.execute_script("return window.modelError") is None
        got = driver.execute_script("return window.classifyAll(arguments[0])",
                                    texts)
        # Typing into the page shows the same scores.
        box = driver.find_element("id", "text")
        box.send_keys(texts[0])
        shown = driver.find_element("id", "scores").text
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    assert len(got) == len(texts) >= 36
    assert [g["label"] for g in got] == [LABELS[i] for i in
                                         np.argmax(expected, -1)]
    np.testing.assert_allclose([g["scores"] for g in got], expected,
                               atol=1e-4)
    assert all(label in shown for label in LABELS)
