// Frontend extension of LongCat Avatar: marks the pack as loaded and decorates its nodes.
import { app } from "../../scripts/app.js";

const EXTENSION_NAME = "LongCat.Avatar";
const NODE_PREFIX = "LongCatAvatar";

// One state object shared by every hook: node definitions are registered BEFORE setup() runs, so setup must
// extend the object rather than replace it.
function state() {
  return (window.__longcatAvatar ??= { decoratedNodes: [] });
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
  },
});
