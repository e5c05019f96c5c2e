// LongCat Avatar pre-run notes: before anything is queued, Audio Encode shows the speech's duration and the segments
// and frames the sampler will make of it, and each loader shows whether its model files are there (with the download
// page when not). The numbers come from the engine through /longcat/preview/audio and /longcat/preview/models.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { inputNode, postJson, store, widgetValue } from "./longcat_common.js";

const AUDIO_ENCODE = "LongCatAvatarAudioEncode";
const NOTE_WIDGET = "longcat_preflight";
const NOTE_HEIGHT = 48; // three lines of the 11 px text
const REFRESH_MS = 700; // how often a note checks whether its inputs changed (one string comparison per node)

// ---- a read-only note inside a node ---------------------------------------------------------------------------------

function addNote(node, refresh) {
  const element = document.createElement("div");
  element.className = "longcat-preflight";
  element.style.cssText = "font:11px sans-serif;color:#b8c0cc;white-space:pre-wrap;overflow:auto;padding:2px 4px";
  const widget = node.addDOMWidget(NOTE_WIDGET, "longcat_preflight", element, {
    serialize: false, // a note, never part of the workflow or the prompt
    hideOnZoom: false,
    getMinHeight: () => NOTE_HEIGHT,
  });
  widget.serialize = false;
  const note = { element, signature: null, busy: false, ready: false };
  const tick = async () => {
    if (!node.graph || node.id == null || node.id === -1 || note.busy) return;
    store("preflight")[String(node.id)] = note;
    note.busy = true;
    try {
      await refresh(node, note);
    } catch (error) {
      show(note, error.message, true);
    } finally {
      note.busy = false;
    }
  };
  const timer = setInterval(tick, REFRESH_MS);
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    clearInterval(timer);
    delete store("preflight")[String(node.id)];
    return onRemoved?.apply(this, arguments);
  };
}

function show(note, content, isError = false) {
  note.element.replaceChildren(...(Array.isArray(content) ? content : [content]));
  note.element.style.color = isError ? "#ff9a7a" : "#b8c0cc";
  note.text = note.element.textContent;
  note.ready = true;
}

function changed(note, inputs) {
  const signature = JSON.stringify(inputs);
  if (signature === note.signature) return false;
  note.signature = signature;
  return true;
}

// ---- Audio Encode: duration, segments, frames -----------------------------------------------------------------------

function audioSource(node, name) {
  const source = inputNode(node, name);
  if (!source) return { name: null, from: null };
  const file = widgetValue(source, "audio");
  return typeof file === "string" && file ? { name: file, from: null } : { name: null, from: source.title ?? source.type };
}

function planText(answer) {
  const speakers = answer.speakers === 2 ? " (two speakers)" : "";
  const plans = answer.plans.map((p) => {
    const segments = `${p.segments} segment${p.segments === 1 ? "" : "s"}`;
    return `${p.version} at ${p.fps} fps: ${p.frames} frames in ${segments} (${p.generated_frames} generated)`;
  });
  const unknown = answer.version_known ? "" : "\n(version unknown until the audio encoder file is found)";
  return `Audio ${answer.duration_s.toFixed(2)} s${speakers} → ${plans.join("; ")}${unknown}`;
}

async function refreshAudio(node, note) {
  const first = audioSource(node, "audio");
  const second = audioSource(node, "audio_2");
  const encoder = widgetValue(inputNode(node, "audio_encoder"), "audio_encoder") ?? null;
  const mode = widgetValue(node, "mode");
  if (!changed(note, [first, second, encoder, mode])) return;
  if (!first.name) {
    const why = first.from ? `the audio comes from ${first.from}` : "connect the speech to 'audio'";
    return show(note, `${why}: its duration is known once it runs`);
  }
  const body = { audio: first.name, audio_2: second.name, mode, audio_encoder: encoder };
  show(note, planText(await postJson("/longcat/preview/audio", body)));
}

// ---- loaders: model files found or where to get them ----------------------------------------------------------------

function fileLine(widget, status) {
  const line = document.createElement("div");
  if (status.found) {
    line.textContent = `✓ ${widget}: found${status.path ? "" : " (none selected)"}`;
    line.title = status.path ?? "";
    return line;
  }
  line.textContent = `✗ ${widget}: not found - `;
  line.title = status.message;
  line.style.color = "#ff9a7a";
  const link = document.createElement("a");
  Object.assign(link, { href: status.page, textContent: "download page", target: "_blank", rel: "noopener" });
  link.style.color = "#7ab8ff";
  line.append(link);
  return line;
}

function loaderRefresher(widgets) {
  return async (node, note) => {
    const values = Object.fromEntries(widgets.map((name) => [name, widgetValue(node, name)]));
    if (!changed(note, values)) return;
    const answer = await postJson("/longcat/preview/models", { node: node.type, values });
    note.files = answer.files;
    show(note, Object.entries(answer.files).map(([name, status]) => fileLine(name, status)));
  };
}

app.registerExtension({
  name: "LongCat.Avatar.Preflight",
  async init() {
    // Which loader widgets name model files: asked once, before the node definitions are registered.
    const response = await api.fetchApi("/longcat/preview/models").catch(() => null);
    store("preflight").loaders = response?.ok ? await response.json() : {};
  },
  beforeRegisterNodeDef(nodeType, nodeData) {
    const widgets = store("preflight").loaders?.[nodeData?.name];
    const refresh = nodeData?.name === AUDIO_ENCODE ? refreshAudio : widgets && loaderRefresher(widgets);
    if (!refresh) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      addNote(this, refresh);
      return result;
    };
  },
});
