// Frontend extension of LongCat Avatar: marks the pack as loaded and decorates its nodes.
import { app } from "../../scripts/app.js";

const EXTENSION_NAME = "LongCat.Avatar";
const NODE_PREFIX = "LongCatAvatar";

app.registerExtension({
  name: EXTENSION_NAME,
  async setup() {
    // State that tests (and curious users) can read to see that the extension ran.
    window.__longcatAvatar = { loaded: true, extension: EXTENSION_NAME, nodePrefix: NODE_PREFIX };
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(NODE_PREFIX)) return;
    const state = window.__longcatAvatar ?? (window.__longcatAvatar = {});
    (state.decoratedNodes ??= []).push(nodeData.name);
  },
});
