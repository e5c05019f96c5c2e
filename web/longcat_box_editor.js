// LongCat Avatar box editor: Audio Encode shows the portrait connected to its sampler; drag a box per speaker on it
// (a colour per speaker, drag to move, corners to resize, x to delete, "Find faces" to detect them). The boxes are
// written to the node's speaker_boxes / extra_people_boxes widgets, so they are saved with the workflow.
// Everything computed - the boxes parsed from the widgets, the crop to the generation size, the speakers' masks on
// the model's token grid, the faces - comes from the pack's /longcat/preview/* routes (the engine), never from here.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { inputNode, postJson, store, widgetValue } from "./longcat_common.js";

const AUDIO_ENCODE = "LongCatAvatarAudioEncode";
const SAMPLER = "LongCatAvatarSampler";
const WIDGET_NAME = "longcat_box_editor";
const SPEAKER_WIDGET = "speaker_boxes";
const EXTRA_WIDGET = "extra_people_boxes";
const SPEAKERS = 2; // the model conditions two speaking people; more boxes are silent extra people
const COLOURS = ["#ff4d4d", "#3d8bff"]; // speaker 1, speaker 2
const EXTRA_COLOUR = "#b0b0b0";
const HANDLE_PX = 9; // screen pixels around a corner that grab it for resizing
const DELETE_PX = 14; // side of the x button in a box's top-right corner, screen pixels
const MIN_BOX_PX = 4; // a drag shorter than this (image pixels) is a click, not a box
const REFRESH_MS = 600; // how often the editor checks whether its inputs changed (one cheap comparison per node)
const EDITOR_HEIGHT = 460; // minimum height of the editor inside the node
const NODE_WIDTH = 460;
const STATUS_LINES = 3; // the status keeps this height whatever its text, so the portrait never moves under the mouse

// ---- the graph: where the portrait and the resolution come from ----------------------------------------------------

function portraitEncodeOf(audioNode) {
  for (const target of audioNode.getOutputNodes?.(0) ?? []) {
    let node = target;
    while (node?.type === "Reroute") node = node.getOutputNodes?.(0)?.[0];
    if (node?.type === SAMPLER) return inputNode(node, "portrait");
  }
  return null;
}

function portraitInputs(audioNode) {
  const encode = portraitEncodeOf(audioNode);
  if (!encode) return { missing: "connect Audio Encode to a LongCat Avatar Sampler that has a Portrait Encode" };
  const image = widgetValue(inputNode(encode, "image"), "image");
  if (typeof image !== "string" || !image) return { missing: "Portrait Encode's image must come from a Load Image node" };
  const sizes = ["resolution", "width", "height"].map((name) => widgetValue(encode, name));
  return { image, resolution: sizes[0], width: sizes[1], height: sizes[2] };
}

function linked(node, name) {
  return node.inputs?.some((input) => input.name === name && input.link != null);
}

// ---- the node's widgets: where the boxes live -----------------------------------------------------------------------

function formatBoxes(boxes) {
  return boxes.map((b) => b.map((v) => Math.round(v)).join(", ")).join("\n");
}

function writeBoxes(node, editor) {
  for (const [name, boxes] of [[SPEAKER_WIDGET, editor.boxes.speakers], [EXTRA_WIDGET, editor.boxes.extras]]) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (!widget) continue;
    widget.value = formatBoxes(boxes);
    widget.callback?.(widget.value);
  }
  node.graph?.setDirtyCanvas?.(true, true);
}

// ---- the engine's answer --------------------------------------------------------------------------------------------

function loadImage(editor, view) {
  const query = new URLSearchParams(view).toString();
  if (editor.imageQuery === query) return;
  editor.imageQuery = query;
  editor.image = new Image();
  editor.image.onload = () => draw(editor);
  editor.image.src = api.apiURL(`/view?${query}`);
}

function loadCropped(editor, dataUrl) {
  editor.cropped = new Image();
  editor.cropped.onload = () => drawPreview(editor);
  editor.cropped.src = dataUrl;
}

async function refresh(node, editor) {
  if (!node.graph || node.id == null || node.id === -1) return; // not in a graph yet
  store("boxEditors")[String(node.id)] = editor;
  const inputs = portraitInputs(node);
  const texts = [SPEAKER_WIDGET, EXTRA_WIDGET].map((name) => widgetValue(node, name) ?? "");
  const signature = JSON.stringify([inputs, texts, linked(node, SPEAKER_WIDGET)]);
  if (signature === editor.signature || editor.drag || editor.busy) return;
  editor.signature = signature;
  if (inputs.missing) return showStatus(editor, inputs.missing, true);
  const notes = [];
  if (linked(node, SPEAKER_WIDGET)) notes.push("speaker_boxes comes from a link: change the boxes at its source");
  if (!linked(node, "audio_2")) notes.push("the boxes are used with two speakers (connect audio_2)");
  editor.busy = true;
  try {
    const body = { ...inputs, speaker_boxes: texts[0], extra_people_boxes: texts[1] };
    const answer = await postJson("/longcat/preview/crop", body);
    editor.answer = answer;
    const copy = (boxes) => boxes.map((box) => [...box]); // edits must not change the engine's answer
    editor.boxes = { speakers: copy(answer.boxes.speakers), extras: copy(answer.boxes.extras) };
    loadImage(editor, answer.view);
    loadCropped(editor, answer.cropped);
    const crop = `${answer.size.width}x${answer.size.height} crop, ${answer.grid.width}x${answer.grid.height} tokens`;
    const used = answer.defaults ? "no boxes: the model uses the default left/right halves (dashed)" : "";
    showStatus(editor, [crop, used, answer.note, ...notes].filter(Boolean).join(" · "), Boolean(answer.note));
    editor.ready = true;
  } catch (error) {
    showStatus(editor, error.message, true);
  } finally {
    editor.busy = false;
    draw(editor);
  }
}

async function findFaces(node, editor) {
  const inputs = portraitInputs(node);
  if (inputs.missing) return showStatus(editor, inputs.missing, true);
  showStatus(editor, "finding faces…", false);
  try {
    const answer = await postJson("/longcat/preview/faces", { image: inputs.image });
    editor.boxes.speakers = answer.boxes;
    writeBoxes(node, editor);
  } catch (error) {
    showStatus(editor, error.message, true);
  }
}

// ---- drawing --------------------------------------------------------------------------------------------------------

function showStatus(editor, text, isError) {
  editor.status.textContent = text;
  editor.status.style.color = isError ? "#ff9a7a" : "#9aa4b0";
}

function colourOf(kind, index) {
  return kind === "speakers" ? COLOURS[index] : EXTRA_COLOUR;
}

function fitCanvas(canvas, box, aspect) {
  const width = Math.max(1, Math.min(box.clientWidth, box.clientHeight * aspect));
  canvas.style.width = `${width}px`;
  canvas.style.height = `${width / aspect}px`;
  canvas.width = Math.round(width * (window.devicePixelRatio || 1));
  canvas.height = Math.round((width / aspect) * (window.devicePixelRatio || 1));
}

function drawBox(ctx, box, colour, label, scale, dashed) {
  const [y0, x0, y1, x1] = box.map((v) => v * scale);
  ctx.setLineDash(dashed ? [6, 4] : []);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.fillStyle = colour;
  const text = 12 * (window.devicePixelRatio || 1);
  ctx.font = `${text}px sans-serif`;
  ctx.fillText(label, x0 + 2, y0 > text + 4 ? y0 - 4 : y1 + text + 2); // above the box, or below it at the top edge
  if (dashed) return;
  const size = DELETE_PX * (window.devicePixelRatio || 1);
  ctx.fillRect(x1 - size, y0, size, size);
  ctx.fillStyle = "#000";
  ctx.fillText("×", x1 - size + 3, y0 + size - 3);
}

function draw(editor) {
  const { canvas, answer } = editor;
  if (!answer) return;
  fitCanvas(canvas, editor.stage, answer.source.width / answer.source.height);
  const ctx = canvas.getContext("2d");
  const scale = canvas.width / answer.source.width;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (editor.image?.complete) ctx.drawImage(editor.image, 0, 0, canvas.width, canvas.height);
  const { top, left, bottom, right } = answer.crop; // darken what the crop to the generation size cuts away
  ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
  ctx.fillRect(0, 0, canvas.width, top * scale);
  ctx.fillRect(0, bottom * scale, canvas.width, canvas.height - bottom * scale);
  ctx.fillRect(0, top * scale, left * scale, (bottom - top) * scale);
  ctx.fillRect(right * scale, top * scale, canvas.width - right * scale, (bottom - top) * scale);
  if (answer.defaults && !editor.boxes.speakers.length) {
    answer.boxes.used.forEach((box, i) => drawBox(ctx, box, COLOURS[i], `speaker ${i + 1} (default)`, scale, true));
  }
  editor.boxes.speakers.forEach((box, i) => drawBox(ctx, box, COLOURS[i], `speaker ${i + 1}`, scale, false));
  editor.boxes.extras.forEach((box, i) => drawBox(ctx, box, EXTRA_COLOUR, `silent ${i + 1}`, scale, false));
  if (editor.drag?.box) drawBox(ctx, editor.drag.box, colourOf(editor.drag.kind, editor.drag.index), "", scale, true);
}

function drawPreview(editor) {
  const { preview, answer } = editor;
  if (!answer || !editor.cropped?.complete) return;
  fitCanvas(preview, editor.previewBox, answer.size.width / answer.size.height);
  const ctx = preview.getContext("2d");
  ctx.drawImage(editor.cropped, 0, 0, preview.width, preview.height);
  const cellW = preview.width / answer.grid.width;
  const cellH = preview.height / answer.grid.height;
  answer.masks.slice(0, SPEAKERS).forEach((mask, k) => {
    ctx.fillStyle = COLOURS[k] + "66"; // the speaker's colour at 40% opacity over the tokens its mask covers
    mask.cells.forEach((row, y) => row.forEach((on, x) => on && ctx.fillRect(x * cellW, y * cellH, cellW, cellH)));
  });
  answer.masks.slice(SPEAKERS + 1).forEach((mask) => {
    ctx.fillStyle = EXTRA_COLOUR + "66";
    mask.cells.forEach((row, y) => row.forEach((on, x) => on && ctx.fillRect(x * cellW, y * cellH, cellW, cellH)));
  });
}

// ---- mouse: draw, move, resize, delete ------------------------------------------------------------------------------

function toImage(editor, event) {
  const rect = editor.canvas.getBoundingClientRect();
  const { width, height } = editor.answer.source;
  const x = ((event.clientX - rect.left) / rect.width) * width;
  const y = ((event.clientY - rect.top) / rect.height) * height;
  return { x: Math.min(width, Math.max(0, x)), y: Math.min(height, Math.max(0, y)), perPx: width / rect.width };
}

function hit(editor, p) {
  const all = [
    ...editor.boxes.speakers.map((box, index) => ({ kind: "speakers", index, box })),
    ...editor.boxes.extras.map((box, index) => ({ kind: "extras", index, box })),
  ];
  for (const item of all.reverse()) {
    const [y0, x0, y1, x1] = item.box;
    const grab = HANDLE_PX * p.perPx;
    const del = DELETE_PX * p.perPx;
    if (p.x >= x1 - del && p.x <= x1 && p.y >= y0 && p.y <= y0 + del) return { ...item, mode: "delete" };
    const corner = [[y0, x0], [y0, x1], [y1, x0], [y1, x1]].findIndex(
      ([cy, cx]) => Math.abs(p.x - cx) <= grab && Math.abs(p.y - cy) <= grab,
    );
    if (corner >= 0) return { ...item, mode: "resize", corner };
    if (p.x > x0 && p.x < x1 && p.y > y0 && p.y < y1) return { ...item, mode: "move" };
  }
  return null;
}

function dragged(drag, p, source) {
  const [y0, x0, y1, x1] = drag.start;
  if (drag.mode === "move") {
    const dy = Math.min(Math.max(p.y - drag.from.y, -y0), source.height - y1);
    const dx = Math.min(Math.max(p.x - drag.from.x, -x0), source.width - x1);
    return [y0 + dy, x0 + dx, y1 + dy, x1 + dx];
  }
  // create and resize: the opposite corner stays where it is
  const anchor = drag.mode === "create" ? [drag.from.y, drag.from.x] : [[y1, x1], [y1, x0], [y0, x1], [y0, x0]][drag.corner];
  return [Math.min(anchor[0], p.y), Math.min(anchor[1], p.x), Math.max(anchor[0], p.y), Math.max(anchor[1], p.x)];
}

function onPointerDown(node, editor, event) {
  if (!editor.answer || event.button !== 0 || linked(node, SPEAKER_WIDGET)) return;
  event.preventDefault();
  event.stopPropagation();
  const p = toImage(editor, event);
  const target = hit(editor, p);
  if (target?.mode === "delete") {
    editor.boxes[target.kind].splice(target.index, 1);
    return writeBoxes(node, editor);
  }
  const kind = editor.boxes.speakers.length < SPEAKERS ? "speakers" : "extras";
  editor.drag = target
    ? { ...target, start: target.box, from: p }
    : { mode: "create", kind, index: editor.boxes[kind].length, start: [p.y, p.x, p.y, p.x], from: p };
  editor.canvas.setPointerCapture?.(event.pointerId);
}

function onPointerMove(editor, event) {
  if (!editor.drag) return;
  event.preventDefault();
  event.stopPropagation();
  editor.drag.box = dragged(editor.drag, toImage(editor, event), editor.answer.source);
  draw(editor);
}

function onPointerUp(node, editor, event) {
  const drag = editor.drag;
  if (!drag) return;
  event.stopPropagation();
  editor.drag = null;
  const box = drag.box ?? drag.start;
  if (box[2] - box[0] < MIN_BOX_PX || box[3] - box[1] < MIN_BOX_PX) return draw(editor);
  editor.boxes[drag.kind][drag.index] = box.map((v) => Math.round(v));
  writeBoxes(node, editor);
}

// ---- the widget -----------------------------------------------------------------------------------------------------

function button(label, title, onClick) {
  const element = document.createElement("button");
  Object.assign(element, { textContent: label, title, type: "button" });
  element.style.cssText = "font-size:11px;padding:2px 8px;margin-right:4px;cursor:pointer";
  element.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return element;
}

function buildEditor(node) {
  const root = document.createElement("div");
  root.className = "longcat-box-editor";
  root.style.cssText = "display:flex;flex-direction:column;gap:4px;height:100%;font:11px sans-serif;color:#ccc";
  const editor = { root, boxes: { speakers: [], extras: [] } };
  const bar = document.createElement("div");
  bar.append(
    button("Find faces", "Detect the faces in the portrait (the engine's detector) and use the two largest", () =>
      findFaces(node, editor),
    ),
    button("Swap 1↔2", "Swap speaker 1 and speaker 2", () => {
      editor.boxes.speakers.reverse();
      writeBoxes(node, editor);
    }),
    button("Clear", "Remove every box (the model then uses the left/right halves)", () => {
      editor.boxes = { speakers: [], extras: [] };
      writeBoxes(node, editor);
    }),
  );
  editor.stage = document.createElement("div");
  editor.stage.style.cssText = "flex:3;min-height:0;display:flex;justify-content:center";
  editor.canvas = document.createElement("canvas");
  editor.canvas.className = "longcat-box-editor-portrait";
  editor.canvas.style.cssText = "cursor:crosshair;touch-action:none";
  editor.stage.append(editor.canvas);
  editor.previewBox = document.createElement("div");
  editor.previewBox.style.cssText = "flex:2;min-height:0;display:flex;justify-content:center";
  editor.preview = document.createElement("canvas");
  editor.preview.className = "longcat-box-editor-mask";
  editor.preview.title = "The portrait as the model sees it, with each speaker's tokens in its colour";
  editor.previewBox.append(editor.preview);
  editor.status = document.createElement("div");
  editor.status.className = "longcat-box-editor-status";
  editor.status.style.cssText = `flex:none;line-height:1.3em;height:${1.3 * STATUS_LINES}em;overflow-y:auto`;
  root.append(bar, editor.stage, editor.previewBox, editor.status);
  editor.canvas.addEventListener("pointerdown", (event) => onPointerDown(node, editor, event));
  editor.canvas.addEventListener("pointermove", (event) => onPointerMove(editor, event));
  editor.canvas.addEventListener("pointerup", (event) => onPointerUp(node, editor, event));
  new ResizeObserver(() => {
    draw(editor);
    drawPreview(editor);
  }).observe(root);
  return editor;
}

function addBoxEditor(node) {
  const editor = buildEditor(node);
  const widget = node.addDOMWidget(WIDGET_NAME, "longcat_box_editor", editor.root, {
    serialize: false, // the boxes are saved by the speaker_boxes widgets; the editor itself holds nothing to save
    hideOnZoom: false,
    getMinHeight: () => EDITOR_HEIGHT,
  });
  widget.serialize = false;
  editor.timer = setInterval(() => refresh(node, editor).catch((e) => showStatus(editor, e.message, true)), REFRESH_MS);
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    clearInterval(editor.timer);
    delete store("boxEditors")[String(node.id)];
    return onRemoved?.apply(this, arguments);
  };
  fitNode(node);
}

function fitNode(node) {
  const [minWidth, minHeight] = node.computeSize();
  node.setSize([Math.max(node.size[0], minWidth, NODE_WIDTH), Math.max(node.size[1], minHeight)]);
}

app.registerExtension({
  name: "LongCat.Avatar.BoxEditor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== AUDIO_ENCODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      addBoxEditor(this);
      return result;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const result = onConfigure?.apply(this, arguments);
      fitNode(this); // a workflow saved without the editor gives the node too little room for it
      return result;
    };
  },
});
