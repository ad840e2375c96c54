// The page's logic: decode a photo, run the end-to-end model (preprocessing + classifier in
// one ONNX graph), show the top 3 and the 28x28 the model saw. Everything stays on the device.
const ort = globalThis.ort;
ort.env.wasm.numThreads = 1; // no cross-origin isolation needed, and one thread is what we measure
ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;

const status = document.getElementById("status");
const results = document.getElementById("results");

let draftTarget = 256; // edge_infer.files.DRAFT_SIZE, as model.json reports it

// The size edge-infer's decoder would give a JPEG (Pillow's draft: the largest scale of 8, 4
// or 2 that keeps both sides at least draftTarget, for JPEGs at least twice that on the short side).
function draftSize(type, width, height) {
  if (type !== "image/jpeg" || Math.min(width, height) < 2 * draftTarget) return null;
  const room = Math.min(Math.floor(width / draftTarget), Math.floor(height / draftTarget));
  const scale = [8, 4, 2].find((s) => room >= s);
  return scale ? [Math.ceil(width / scale), Math.ceil(height / scale)] : null;
}

// A decoded picture as the model's input: RGBA bytes, EXIF orientation applied, no colour
// management (Pillow applies none either). A big JPEG is scaled to the size the CLI decodes it
// at (by the browser's resampling, not libjpeg's, so its pixels differ slightly).
async function decode(blob) {
  const options = { imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none" };
  let bitmap = await createImageBitmap(blob, options);
  const reduced = draftSize(blob.type, bitmap.width, bitmap.height);
  if (reduced) {
    bitmap.close();
    bitmap = await createImageBitmap(blob, { ...options, resizeWidth: reduced[0], resizeHeight: reduced[1],
                                             resizeQuality: "medium" });
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const pixels = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  bitmap.close();
  return { rgba: new Uint8Array(pixels.buffer), width: canvas.width, height: canvas.height };
}

async function classify(session, classNames, blob) {
  const { rgba, width, height } = await decode(blob);
  const started = performance.now();
  const output = await session.run({ rgba: new ort.Tensor("uint8", rgba, [height, width, 4]) });
  const milliseconds = performance.now() - started;
  const probabilities = output.probabilities.data;
  const order = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a]);
  return {
    index: order[0],
    label: classNames[order[0]],
    top: order.slice(0, 3).map((i) => [classNames[i], probabilities[i]]),
    preprocessed: output.preprocessed.data,
    width, height, milliseconds,
  };
}

function drawPreprocessed(canvas, values) {
  canvas.width = canvas.height = 28;
  const context = canvas.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const level = Math.round(values[i] * 255);
    image.data.set([level, level, level, 255], i * 4);
  }
  context.putImageData(image, 0, 0);
}

function show(file, answer) {
  const card = document.createElement("div");
  card.className = "card";
  const photo = document.createElement("img");
  photo.src = URL.createObjectURL(file);
  photo.onload = () => URL.revokeObjectURL(photo.src); // the picture stays, the blob is released
  photo.alt = file.name;
  const seen = document.createElement("canvas");
  const text = document.createElement("div");
  if (answer.error) {
    text.innerHTML = `<div class="error"></div>`;
    text.firstChild.textContent = `${file.name}: ${answer.error}`;
  } else {
    drawPreprocessed(seen, answer.preprocessed);
    const list = document.createElement("ol");
    answer.top.forEach(([label, probability], rank) => {
      const item = document.createElement("li");
      item.textContent = `${label}: ${(100 * probability).toFixed(1)} %`;
      if (rank === 0) item.className = "best";
      list.append(item);
    });
    const note = document.createElement("div");
    note.className = "small";
    note.textContent = `${file.name}, ${answer.width}x${answer.height}, ${answer.milliseconds.toFixed(1)} ms in the model`;
    text.append(list, note);
  }
  card.append(photo, seen, text);
  results.prepend(card);
}

async function handle(session, classNames, files) {
  for (const file of files) {
    let answer;
    try {
      answer = await classify(session, classNames, file);
    } catch (error) {
      answer = { error: `cannot read it as an image (${error.message || error})` };
    }
    show(file, answer);
  }
}

// ?selftest=images/index.json: classify every listed image and write the answers as JSON into
// #selftest (what the browser test reads).
async function selftest(session, classNames, listUrl) {
  const names = await (await fetch(listUrl)).json();
  const answers = [];
  for (const name of names) {
    const blob = await (await fetch(new URL(name, new URL(listUrl, location.href)))).blob();
    try {
      const answer = await classify(session, classNames, blob);
      answers.push({ name, label: answer.label, index: answer.index, milliseconds: answer.milliseconds });
      show(new File([blob], name), answer);
    } catch (error) {
      answers.push({ name, error: String(error.message || error) });
    }
  }
  const out = document.getElementById("selftest");
  out.textContent = JSON.stringify(answers);
  out.hidden = false;
  document.title = "selftest done";
  await fetch("selftest", { method: "POST", body: out.textContent }); // the server records them (tests)
}

async function main() {
  const info = await (await fetch("model.json")).json();
  draftTarget = info.draft_size;
  const session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  status.textContent = `Ready: ${info.name} (${info.precision}), preprocessing ${info.preprocessing} inside the model.`;
  const list = new URLSearchParams(location.search).get("selftest");
  if (list) {
    await selftest(session, info.class_names, list);
    return;
  }
  const input = document.getElementById("files");
  input.addEventListener("change", () => handle(session, info.class_names, [...input.files]));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    handle(session, info.class_names, [...event.dataTransfer.files]);
  });
}

main().catch((error) => {
  status.textContent = `The model could not be loaded: ${error.message || error}`;
  if (new URLSearchParams(location.search).get("selftest")) {
    fetch("selftest", { method: "POST", body: JSON.stringify({ error: String(error.message || error) }) });
  }
});
