"""LongCat Avatar for ComfyUI: the V3 entry point, the frontend extension folder and the pack's HTTP routes.

ComfyUI imports this folder under whatever name it has, so everything below uses relative imports only.
"""

from __future__ import annotations

WEB_DIRECTORY = "./web"

try:  # Inside ComfyUI: register the nodes. Outside (plain `import` by tools), stay importable.
    from comfy_api.latest import ComfyExtension, io
except ImportError:  # pragma: no cover - only without ComfyUI
    ComfyExtension = None  # type: ignore[assignment,misc]

if ComfyExtension is not None:
    from . import routes  # noqa: F401  POST /longcat/avatar; registers itself and never raises
    from .nodes.registry import all_nodes

    class LongCatAvatarExtension(ComfyExtension):
        """The pack's V3 extension: lists its nodes."""

        async def get_node_list(self) -> list[type[io.ComfyNode]]:
            """Every node class of the pack."""
            return all_nodes()

    async def comfy_entrypoint() -> LongCatAvatarExtension:
        """ComfyUI's V3 entry point."""
        return LongCatAvatarExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
