"""Serving the avatar beyond one machine: a Ray Serve application (serve_app.py) and a Modal app (modal_app.py).

Each replica owns one headless ComfyUI with this pack (longcat_avatar/comfy_launcher.py) and forwards jobs to that
ComfyUI's own POST /longcat/avatar, so the JSON contract is the pack's code. Nothing in the pack imports this folder;
its requirements are in deploy/requirements.txt.
"""
