// Helpers shared by the LongCat Avatar box editor and pre-run notes (a module: it registers no extension itself).
import { api } from "../../scripts/api.js";

// The page-wide state object of the pack's extensions (tests and curious users read it); `part` names one section.
export function store(part) {
  const shared = (window.__longcatAvatar ??= { decoratedNodes: [] });
  return (shared[part] ??= {});
}

// The node connected to input `name`, looking through Reroute nodes.
export function inputNode(node, name) {
  const slot = node.findInputSlot?.(name) ?? -1;
  let source = slot >= 0 ? node.getInputNode(slot) : null;
  while (source?.type === "Reroute") source = source.getInputNode(0);
  return source;
}

export function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

// POST a JSON body to one of the pack's routes; the answer, or an Error carrying the route's `error` text.
export async function postJson(route, body) {
  const response = await api.fetchApi(route, { method: "POST", body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({ error: `${route} answered ${response.status}` }));
  return response.ok ? answer : Promise.reject(new Error(answer.error ?? `${route} answered ${response.status}`));
}
