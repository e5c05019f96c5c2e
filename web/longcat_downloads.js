// Model downloads from the loaders: every LongCat Avatar loader gets a "download models" button. It opens one small
// panel (version, DiT format, LoRA, vocal separator) that starts the download on the server (POST
// /longcat/downloads), shows its progress while it runs (GET, polled) and can cancel it. The server does the work,
// in the background: the queue keeps running and closing the page does not stop the download.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const ROUTE = "/longcat/downloads";
const BUTTON = "download models";
const PANEL_ID = "longcat-avatar-downloads";
const POLL_MS = 1000; // progress refresh while a download runs

function size(bytes) {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

// What tests (and curious users) can read: the last state the server reported.
function downloadsState() {
  return (window.__longcatAvatarDownloads ??= { last: null });
}

async function call(method, path = "", body = undefined) {
  const response = await api.fetchApi(ROUTE + path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { ok: response.ok, data: await response.json() };
}

function describe(state) {
  if (state.error) return `refused: ${state.error}`;
  if (state.status === "idle") return "Nothing downloaded yet.";
  const bytes = `${size(state.done_bytes)} / ${size(state.total_bytes)}`;
  const files = `${state.verified ?? 0}/${state.files ?? 0} files verified`;
  return `${state.status}: ${bytes}, ${files}${state.message ? ` - ${state.message}` : ""}`;
}

function element(tag, properties = {}, children = []) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function field(label, input) {
  return element("label", { style: "display:block;margin:4px 0" }, [label + " ", input]);
}

function buildPanel() {
  const version = element("select", { name: "version" }, ["1.5", "1.0"].map((v) => element("option", { value: v }, [v])));
  const format = element("select", { name: "format" });
  const lora = element("input", { type: "checkbox", name: "with_lora" });
  const separator = element("input", { type: "checkbox", name: "vocal_separator", checked: true });
  const status = element("div", { className: "status", style: "margin:6px 0;max-width:360px" });
  const start = element("button", { name: "start" }, ["Download"]);
  const cancel = element("button", { name: "cancel" }, ["Cancel"]);
  const close = element("button", { name: "close" }, ["Close"]);
  const panel = element("div", { id: PANEL_ID }, [
    element("b", {}, ["LongCat Avatar model files"]),
    field("version", version),
    field("DiT format", format),
    field("8-step distillation LoRA (v1.5)", lora),
    field("vocal separator (Kim_Vocal_2)", separator),
    status,
    start, cancel, close,
  ]);
  panel.style.cssText =
    "position:fixed;top:80px;right:20px;z-index:10000;padding:12px;background:#222;color:#ddd;" +
    "border:1px solid #555;border-radius:6px;font:13px sans-serif";
  const formats = () => {
    const known = downloadsState().last?.formats?.[version.value] ?? ["int8", "bf16"];
    format.replaceChildren(...known.map((f) => element("option", { value: f }, [f])));
    lora.disabled = version.value !== "1.5";
  };
  version.addEventListener("change", formats);
  start.addEventListener("click", async () => {
    const choice = { version: version.value, format: format.value, with_lora: !lora.disabled && lora.checked,
                     vocal_separator: separator.checked };
    show(await call("POST", "", choice));
    poll();
  });
  cancel.addEventListener("click", async () => show(await call("POST", "/cancel")));
  close.addEventListener("click", () => panel.remove());
  panel.refreshFormats = formats;
  return panel;
}

function show({ data }) {
  if (!data.error) downloadsState().last = data;
  const panel = document.getElementById(PANEL_ID);
  if (panel) panel.querySelector(".status").textContent = describe(data);
  return data;
}

async function poll() {
  const state = show(await call("GET"));
  if (state.status === "running") {
    setTimeout(poll, POLL_MS);
  } else if (state.status === "done") {
    await app.refreshComboInNodes?.(); // the loaders' dropdowns list the new files
  }
}

async function openPanel() {
  let panel = document.getElementById(PANEL_ID);
  if (!panel) {
    panel = buildPanel();
    document.body.append(panel);
  }
  await poll();
  panel.refreshFormats();
}

app.registerExtension({
  name: "LongCat.Avatar.Downloads",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith("LongCatAvatar") || !nodeData.name.endsWith("Loader")) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      // Added after the input widgets and never saved, so workflows' widget values keep their positions.
      const button = this.addWidget("button", BUTTON, null, () => openPanel());
      button.serialize = false;
      button.options = { ...(button.options ?? {}), serialize: false };
      return result;
    };
  },
});
