"""The command line: `python -m longcat_avatar generate | batch | status | create-config | doctor | estimate |
download` (each has --help)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from . import batch as batch_files
from .autostart import add_arguments as add_autostart_arguments
from .autostart import server_for
from .client import AvatarGenerator, Inputs, check_inputs
from .comfy_http import DEFAULT_URL
from .errors import AvatarError, InvalidParametersError, ServerUnavailableError
from .interruptible import run_interruptibly
from .job_status import JobStatus
from .params import DISTILLED, RESOLUTIONS, VERSIONS, GenerationParams
from .progress import ProgressBar
from .shared import limits

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_SERVER_DOWN = 0, 1, 2, 3  # 2 is also argparse's usage-error code


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"ComfyUI server URL, used as given (default: $COMFYUI_URL, else {DEFAULT_URL}; when nothing answers "
        "there, a headless ComfyUI is started for the command and stopped at its end)",
    )
    add_autostart_arguments(parser)
    parser.add_argument(
        "--workflow", metavar="FILE", type=Path, help="API-format workflow to fill (default: the one in workflows/)"
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="give up (and interrupt) after S seconds")


def _generation_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    low, high = limits.RECOMMENDED_STEPS
    add("--steps", type=int, help=f"denoising steps {limits.MIN_STEPS}-{limits.MAX_STEPS} ({low}-{high} recommended)")
    guidance = f"{limits.MIN_GUIDANCE:g}-{limits.MAX_GUIDANCE:g}"
    add("--guidance", type=float, help=f"audio guidance scale {guidance} (lip sync strength)")
    add("--text-guidance", type=float, help=f"text guidance scale {guidance}")
    add("--fps", type=float, help=f"frame rate of the MP4, {limits.MIN_FPS:g}-{limits.MAX_FPS:g}")
    add("--seed", type=int, help="noise seed (random when omitted; printed at the end)")
    add("--version", choices=VERSIONS, default=VERSIONS[0], help=f"model version (default {VERSIONS[0]})")
    add("--resolution", help=f"generation size: {', '.join(RESOLUTIONS)} or WIDTHxHEIGHT (default: the workflow's)")
    add("--prompt", help="text describing the video (default: the workflow's)")
    add(
        "--distilled",
        choices=DISTILLED,
        help="distilled sampling: auto (on only with the v1.5 DMD distillation LoRA, which the default workflow "
        "loads), on, or off (full sampling with --steps/--guidance, LoRA removed)",
    )
    add(
        "--separate-vocals",
        action=argparse.BooleanOptionalAction,
        help="features from the voice separated from music and noise (Kim_Vocal_2.onnx on the server, as the "
        "official demos do; the video keeps the original audio). Default: the workflow's (on for recordings, off "
        "for --text)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its five commands."""
    parser = argparse.ArgumentParser(
        prog="python -m longcat_avatar",
        description="Talking-head videos with LongCat-Video-Avatar through a running ComfyUI server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser("generate", help="make one video", description="Make one talking video (MP4).")
    generate.add_argument("--image", required=True, type=Path, help="portrait image (PNG, JPEG, WebP, BMP)")
    speech = generate.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", type=Path, help="speech (WAV, FLAC, MP3, Ogg, M4A, WebM)")
    speech.add_argument("--text", help="text to speak instead of --audio (espeak-ng on the server)")
    generate.add_argument("--voice", default="en-us", help="espeak-ng voice for --text (default en-us)")
    generate.add_argument("--output", required=True, type=Path, help="where to write the MP4")
    _generation_options(generate)
    _server_options(generate)
    generate.add_argument("--quiet", action="store_true", help="no progress bar")

    run = commands.add_parser(
        "batch", help="run a batch file", description="Run every job of a JSON batch file, then print a summary."
    )
    run.add_argument("--config", required=True, type=Path, help="the batch file (see create-config)")
    run.add_argument("--strict", action="store_true", help="run nothing when any job is invalid")
    run.add_argument("--check", action="store_true", help="only validate the jobs")
    _server_options(run)
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    status = commands.add_parser(
        "status",
        help="show a job's progress",
        description="The phase, segment, steps and time left of a job on the server: one started with the HTTP "
        "route (its job id) or any prompt queued elsewhere (its prompt id).",
    )
    status.add_argument("job_id", metavar="JOB_ID", help="the job id (or ComfyUI prompt id)")
    status.add_argument("--follow", action="store_true", help="print each change until the job ends")
    status.add_argument(
        "--server", metavar="URL", help=f"ComfyUI server URL (default: $COMFYUI_URL, else {DEFAULT_URL})"
    )

    create = commands.add_parser(
        "create-config", help="write a batch file template", description="Write a batch file template."
    )
    create.add_argument("--output", required=True, type=Path, help="the file to write")
    create.add_argument("--force", action="store_true", help="overwrite an existing file")

    from .doctor import add_arguments as add_doctor_arguments

    doctor = commands.add_parser(
        "doctor",
        help="check the installation",
        description="Report torch/CUDA/VRAM, ffmpeg, espeak-ng and the model files for v1.0 and v1.5 (what is "
        "missing, its size and download page); --selftest runs the whole graph with tiny random models.",
    )
    add_doctor_arguments(doctor)

    from .estimate import add_arguments as add_estimate_arguments

    estimate = commands.add_parser(
        "estimate",
        help="plan GPU memory and time for a run",
        description="The memory plan (DiT weights resident and offloaded, peak per phase in GB) and the DiT compute "
        "time of a run, computed from the published v1.5 configs without loading anything.",
    )
    add_estimate_arguments(estimate)

    from .downloads import add_arguments as add_download_arguments

    download = commands.add_parser(
        "download",
        help="download the model files",
        description="Download the files one model version needs from the Hugging Face hub into ComfyUI's "
        "models/longcat/ (the official layout), checking free disk space first and every file's hash after. "
        "HF_ENDPOINT and HF_TOKEN are honoured.",
    )
    add_download_arguments(download)
    return parser


def _params(args: argparse.Namespace) -> GenerationParams:
    return GenerationParams(
        args.steps,
        args.guidance,
        args.text_guidance,
        args.fps,
        args.seed,
        args.version,
        args.resolution,
        args.prompt,
        args.distilled,
        args.separate_vocals,
    )


def _generator(args: argparse.Namespace, url: str) -> AvatarGenerator:
    return AvatarGenerator(url, workflow=args.workflow, timeout_s=args.timeout)


def cmd_generate(args: argparse.Namespace) -> int:
    """`generate`: one video with a progress bar."""
    inputs = Inputs(args.image, audio=args.audio, speech_text=args.text, voice=args.voice if args.text else None)
    check_inputs(inputs, _params(args))  # bad input is refused before a server is started
    bar = None if args.quiet else ProgressBar()
    with server_for(args) as url:
        result = run_interruptibly(_generator(args, url).arun(inputs, _params(args), args.output, bar))
    if bar is not None:
        bar.close()
    duration = f"{result.duration_s:.2f} s" if result.duration_s is not None else "unknown length"
    fps = f"{result.fps:g} fps, " if result.fps else ""
    print(f"Wrote {result.output} ({duration}, {fps}seed {result.seed}) in {result.elapsed_s:.1f} s")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    """`batch`: validate every job, run the valid ones, print a summary."""
    jobs = batch_files.load_jobs(args.config)
    invalid = [job for job in jobs if job.problems]
    for job in invalid:
        print(f"job {job.number} is invalid: " + "; ".join(job.problems), file=sys.stderr)
    print(f"{len(jobs)} job(s) in {args.config}: {len(jobs) - len(invalid)} valid, {len(invalid)} invalid")
    if args.check or (args.strict and invalid):
        return EXIT_INVALID if invalid else EXIT_OK

    def start(job: batch_files.Job) -> ProgressBar | None:
        """Announce a job and give it its own progress bar."""
        print(f"job {job.number}/{len(jobs)}: {job.image} + {job.audio} -> {job.output}", flush=True)
        return None if args.quiet else ProgressBar(label=f"[{job.number}] ")

    with server_for(args) if len(invalid) < len(jobs) else contextlib.nullcontext(args.server) as url:
        outcomes = batch_files.run_jobs(_generator(args, url), jobs, start)  # no valid job: nothing is started
    print(batch_files.summary(outcomes))
    return EXIT_OK if all(o.status == "ok" for o in outcomes) else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    """`status`: a job's state once, or every change of it until it ends with --follow."""
    client = AvatarGenerator(args.server)

    def show(status: JobStatus) -> None:
        """Print one state."""
        print(status.describe(), flush=True)

    final = client.follow_job(args.job_id, show) if args.follow else client.job_status(args.job_id)
    if not args.follow:
        show(final)
    return EXIT_FAILED if final.status == "error" else EXIT_OK


def cmd_create_config(args: argparse.Namespace) -> int:
    """`create-config`: write the batch template."""
    batch_files.write_template(args.output, force=args.force)
    print(f"Wrote a batch template with 2 jobs to {args.output}; edit it, then run: batch --config {args.output}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (failures print a readable message, no traceback)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    from .doctor import cmd_doctor
    from .downloads import cmd_download
    from .estimate import cmd_estimate

    handlers = {
        "generate": cmd_generate,
        "batch": cmd_batch,
        "status": cmd_status,
        "create-config": cmd_create_config,
        "doctor": cmd_doctor,
        "estimate": cmd_estimate,
        "download": cmd_download,
    }
    try:
        return handlers[args.command](args)
    except InvalidParametersError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ServerUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SERVER_DOWN
    except AvatarError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted (the server was asked to stop the running prompt)", file=sys.stderr)
        return 130  # the shell's code for Ctrl-C
