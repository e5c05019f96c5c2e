// Frontend extension of LongCat Avatar: marks the pack as loaded, decorates its nodes, and shows the sampler's
// report (mode, steps, segments, frames) inside the node after a run.
import { app } from "../../scripts/app.js";

const EXTENSION_NAME = "LongCat.Avatar";
const NODE_PREFIX = "LongCatAvatar";
const INFO_WIDGET = "longcat_info";
const NODES_WITH_INFO = ["LongCatAvatarSampler"];

// One state object shared by every hook: node definitions are registered BEFORE setup() runs, so setup must
// extend the object rather than replace it.
function state() {
  return (window.__longcatAvatar ??= { decoratedNodes: [] });
}

// A read-only, multi-line text widget that is neither saved with the workflow nor sent to the server.
function infoWidget(node) {
  let widget = node.widgets?.find((w) => w.name === INFO_WIDGET);
  if (widget) return widget;
  const makeString = window.comfyAPI?.widgets?.ComfyWidgets?.STRING;
  widget = makeString
    ? makeString(node, INFO_WIDGET, ["STRING", { multiline: true }], app).widget
    : node.addWidget("text", INFO_WIDGET, "", () => {});
  widget.serialize = false;
  widget.options = { ...(widget.options ?? {}), serialize: false };
  if (widget.inputEl) {
    widget.inputEl.readOnly = true;
    widget.inputEl.style.opacity = 0.8;
  }
  node.setSize?.([node.size[0], Math.max(node.size[1], node.computeSize()[1])]);  // room for the text
  return widget;
}

function showInfo(nodeType) {
  const onExecuted = nodeType.prototype.onExecuted;
  nodeType.prototype.onExecuted = function (message) {
    onExecuted?.apply(this, arguments);
    const text = Array.isArray(message?.text) ? message.text.join("\n") : message?.text;
    if (!text) return;
    infoWidget(this).value = text;
    state().lastInfo = { node: String(this.id), text };
    this.setDirtyCanvas?.(true, true);
  };
}

app.registerExtension({
  name: EXTENSION_NAME,
  async setup() {
    // State that tests (and curious users) can read to see that the extension ran.
    Object.assign(state(), { loaded: true, extension: EXTENSION_NAME, nodePrefix: NODE_PREFIX });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(NODE_PREFIX)) return;
    const decorated = (state().decoratedNodes ??= []);
    if (!decorated.includes(nodeData.name)) decorated.push(nodeData.name);
    if (NODES_WITH_INFO.includes(nodeData.name)) showInfo(nodeType);
  },
});
