// Runs a trimzoo export with MediaPipe task metadata (text_classifier_*.tflite)
// in MediaPipe Tasks for web. The tasks library and its wasm files come from
// node_modules (npm ci): nothing is fetched from a CDN.
import { FilesetResolver, TextClassifier } from
  "./node_modules/@mediapipe/tasks-text/text_bundle.mjs";

const params = new URLSearchParams(window.location.search);
const MODEL = params.get("model") || "model.tflite";
const status = document.getElementById("status");
const input = document.getElementById("text");
const table = document.getElementById("scores");

// Every category of one text, in label order: [{label, score}].
function classify(classifier, text) {
  const categories = classifier.classify(text).classifications[0].categories;
  return categories
    .slice()
    .sort((a, b) => a.index - b.index)
    .map((c) => ({ label: c.categoryName, score: c.score }));
}

function show(scores) {
  table.replaceChildren(...scores.map(({ label, score }) => {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = label;
    const value = document.createElement("td");
    value.textContent = score.toFixed(4);
    const bar = document.createElement("td");
    const fill = document.createElement("div");
    fill.className = "bar";
    fill.style.width = `${Math.round(score * 200)}px`;
    bar.append(fill);
    row.append(name, value, bar);
    return row;
  }));
}

async function main() {
  const fileset = await FilesetResolver.forTextTasks(
    "./node_modules/@mediapipe/tasks-text/wasm");
  const classifier = await TextClassifier.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: MODEL },
    maxResults: -1,
  });
  // For scripts and tests: the top label of each text, and its scores.
  window.classifyAll = (texts) => texts.map((text) => {
    const scores = classify(classifier, text);
    const best = scores.reduce((a, b) => (b.score > a.score ? b : a));
    return { label: best.label, scores: scores.map((s) => s.score) };
  });
  input.disabled = false;
  input.focus();
  input.addEventListener("input", () => {
    if (input.value.trim()) show(classify(classifier, input.value));
    else table.replaceChildren();
  });
  status.textContent = `Model: ${MODEL}. Type to classify.`;
  window.modelReady = true;
}

main().catch((error) => {
  status.textContent = `Could not load ${MODEL}: ${error}`;
  window.modelError = String(error);
});
